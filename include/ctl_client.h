/*
 * Client side of the target's control socket (include/control.h): one
 * request line out, the answer back (a status line, and for some requests
 * a body of lines). Used by znstgt-ctl and the tests.
 */
#ifndef ZNSTGT_CTL_CLIENT_H
#define ZNSTGT_CTL_CLIENT_H

#include <stddef.h>

/*
 * Send request (one line, without '\n') to the control socket at path and
 * read the answer. While the socket does not exist or nobody listens yet,
 * connecting is retried for up to connect_wait_ms (a target starting up);
 * the answer must come within timeout_ms. Returns 0 for "ok" (reply holds
 * the text after "ok", possibly empty), 1 for "error: TEXT" (reply holds
 * TEXT), -1 when the target could not be reached or did not answer
 * (reply says why).
 */
int ctl_request(const char *path, const char *request, int connect_wait_ms, int timeout_ms,
		char *reply, size_t replylen);
/*
 * ctl_request() for a request whose answer may carry a body (status,
 * metrics): *body gets its lines (malloc'd, NUL-terminated, the '.'
 * stuffing undone, each line ended by '\n'), or NULL when the answer has
 * none. An answer whose body does not end with its "." line was cut short:
 * -1.
 */
int ctl_request_body(const char *path, const char *request, int connect_wait_ms, int timeout_ms,
		     char *reply, size_t replylen, char **body);

#endif
