/*
 * Copying out of a file mapping without dying of SIGBUS.
 *
 * A load from an mmap'd file that the kernel cannot back - the disk fails
 * to read the page, or the file was cut shorter behind our back - does not
 * return an error: it raises SIGBUS in the thread that made it, and by
 * default that ends the process. sigbus_guard_copy() turns such a fault
 * during the one copy it makes into -EFAULT, so that the caller can take the
 * path that reports errors (a plain read(2) returns EIO). A store into a
 * mapping that has become shorter (a guest memory file a client shrank)
 * faults the same way and is caught the same way.
 *
 * A SIGBUS anywhere else is not ours to hide: the handler puts back the
 * handler from before (the default action, or a sanitizer's) and returns,
 * the faulting access runs again and the process ends as if the guard had
 * never been installed. Nothing else in the daemon may take SIGBUS over:
 * a guarded copy would then fault fatally.
 */
#ifndef ZNSTGT_SIGBUS_GUARD_H
#define ZNSTGT_SIGBUS_GUARD_H

#include <stddef.h>
#include <sys/uio.h>

/* Install the process-wide SIGBUS handler, unless it is in place already
 * (then nothing happens). 0 or -errno. */
int sigbus_guard_install(void);

/* Copy len bytes from src into the iovec. 0; -EINVAL when the iovec holds
 * fewer than len bytes; -EFAULT when a page of src or of the iovec faulted
 * (the destination then holds part of the data). Needs
 * sigbus_guard_install(). */
int sigbus_guard_copy(const struct iovec *dst, int dstcnt, const void *src, size_t len);

/* Run fn(arg), whose loads and stores may touch a file mapping: 0, or
 * -EFAULT when one faulted (fn stopped there). Needs sigbus_guard_install(). */
int sigbus_guard_run(void (*fn)(void *arg), void *arg);

#endif
