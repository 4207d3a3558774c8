/*
 * iovec bookkeeping after a short readv/writev/sendmsg/preadv/pwritev:
 * consume the n bytes that were transferred from the front of the array.
 */
#ifndef ZNSTGT_IOV_H
#define ZNSTGT_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Skip the entries n covers whole (and empty ones), trim the next one. */
static inline void iov_consume(struct iovec **v, int *cnt, size_t n)
{
	while (*cnt && n >= (*v)->iov_len) {
		n -= (*v)->iov_len;
		(*v)++;
		(*cnt)--;
	}
	if (*cnt && n) {
		(*v)->iov_base = (char *)(*v)->iov_base + n;
		(*v)->iov_len -= n;
	}
}

#endif
