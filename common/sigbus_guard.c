#include "sigbus_guard.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

/* Where the guarded copy of this thread resumes after a fault; NULL outside
 * a guarded copy. Read by the handler, which runs on the faulting thread. */
static __thread sigjmp_buf *volatile guard_resume;

/* What SIGBUS did before the guard: the default action, or a sanitizer's
 * report. A fault outside a guarded copy goes back to it. */
static struct sigaction before;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	sigjmp_buf *resume = guard_resume;

	(void)uctx;
	/* si_code > 0: the kernel's, for an access of this thread; a SIGBUS
	 * sent with kill(2) faulted nothing a guard runs. */
	if (resume && si->si_code > 0) {
		guard_resume = NULL;
		siglongjmp(*resume, 1);
	}
	/* Not a guarded copy: the handler from before, on the access that
	 * faulted when it runs again after this return; a SIGBUS sent by
	 * kill(2) (si_code <= 0) repeats no access, so it is raised again. */
	sigaction(sig, &before, NULL);
	if (si->si_code <= 0)
		raise(sig);
}

int sigbus_guard_install(void)
{
	struct sigaction sa;

	/* Installing again is harmless: threads racing here set the same. */
	if (sigaction(SIGBUS, NULL, &sa))
		return -errno;
	if ((sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == on_sigbus)
		return 0;
	before = sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	/* SA_NODEFER: SIGBUS stays unblocked while the handler runs, so that
	 * jumping out of it needs no signal mask restored (sigsetjmp(, 0),
	 * no sigprocmask per copy). */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) ? -errno : 0;
}

int sigbus_guard_run(void (*fn)(void *arg), void *arg)
{
	/* Through memory: -Wclobbered cannot see that nothing changes them
	 * between sigsetjmp() and a jump back. */
	struct {
		void (*fn)(void *arg);
		void *arg;
	} volatile job = { fn, arg };
	/* A guard run inside another gives the outer one back when it ends. */
	sigjmp_buf *volatile outer = guard_resume;
	sigjmp_buf resume;
	if (sigsetjmp(resume, 0)) {
		guard_resume = outer; /* the handler had cleared it */
		return -EFAULT;
	}
	guard_resume = &resume;
	/* The call stays between the two stores (a signal fence orders this
	 * thread's accesses as its signal handler sees them). */
	atomic_signal_fence(memory_order_seq_cst);
	job.fn(job.arg);
	atomic_signal_fence(memory_order_seq_cst);
	guard_resume = outer;
	return 0;
}

struct copy_job {
	const struct iovec *dst;
	int dstcnt;
	const void *src;
	size_t len;
};

static void copy_out(void *arg)
{
	const struct copy_job *j = arg;
	const char *from = j->src;
	size_t len = j->len;
	for (int i = 0; i < j->dstcnt && len; i++) {
		size_t n = j->dst[i].iov_len < len ? j->dst[i].iov_len : len;
		memcpy(j->dst[i].iov_base, from, n);
		from += n;
		len -= n;
	}
}

int sigbus_guard_copy(const struct iovec *dst, int dstcnt, const void *src, size_t len)
{
	size_t room = 0;
	for (int i = 0; i < dstcnt; i++)
		room += dst[i].iov_len;
	if (room < len)
		return -EINVAL;
	struct copy_job j = { dst, dstcnt, src, len };
	return sigbus_guard_run(copy_out, &j);
}
