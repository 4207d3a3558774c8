#include "sigbus_guard.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

/* Where the guarded copy of this thread resumes after a fault; NULL outside
 * a guarded copy. Read by the handler, which runs on the faulting thread. */
static __thread sigjmp_buf *volatile guard_resume;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	sigjmp_buf *resume = guard_resume;

	(void)si;
	(void)uctx;
	if (resume) {
		guard_resume = NULL;
		siglongjmp(*resume, 1);
	}
	/* Not a guarded copy: the default action, on the access that
	 * faulted, when it runs again after this return. */
	signal(sig, SIG_DFL);
}

int sigbus_guard_install(void)
{
	struct sigaction sa;

	/* Installing again is harmless: threads racing here set the same. */
	if (sigaction(SIGBUS, NULL, &sa) == 0 && (sa.sa_flags & SA_SIGINFO) &&
	    sa.sa_sigaction == on_sigbus)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	/* SA_NODEFER: SIGBUS stays unblocked while the handler runs, so that
	 * jumping out of it needs no signal mask restored (sigsetjmp(, 0),
	 * no sigprocmask per copy). */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) ? -errno : 0;
}

/* The copy itself, out of line: after sigsetjmp() nothing of the caller's
 * lives in a register that the jump could leave stale. */
static void __attribute__((noinline)) copy_out(const struct iovec *dst, int dstcnt,
						const char *from, size_t len)
{
	for (int i = 0; i < dstcnt && len; i++) {
		size_t n = dst[i].iov_len < len ? dst[i].iov_len : len;

		memcpy(dst[i].iov_base, from, n);
		from += n;
		len -= n;
	}
}

int sigbus_guard_copy(const struct iovec *dst, int dstcnt, const void *src, size_t len)
{
	struct {
		const struct iovec *dst;
		int dstcnt;
		const void *src;
		size_t len;
	} volatile job = { dst, dstcnt, src, len };
	sigjmp_buf resume;

	if (sigsetjmp(resume, 0))
		return -EFAULT; /* the handler cleared guard_resume */
	guard_resume = &resume;
	/* The copy stays between the two stores (a signal fence orders this
	 * thread's accesses as its signal handler sees them). */
	atomic_signal_fence(memory_order_seq_cst);
	copy_out(job.dst, job.dstcnt, job.src, job.len);
	atomic_signal_fence(memory_order_seq_cst);
	guard_resume = NULL;
	return 0;
}
