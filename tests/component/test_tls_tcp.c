/*
 * TLS 1.3 listeners over real TCP: the whole target in-process with a plain
 * listener and a tls_listen one, and an OpenSSL PSK client in the test that
 * offers the identity and TLS PSK a Linux host derives from the configured
 * PSK (common/nvme_psk.c). The test client library (tests/lib/nvmf_client.h)
 * speaks NVMe/TCP through a socketpair that a relay thread joins to the TLS
 * connection, so ICReq, Connect, Identify and I/O all run inside TLS.
 * Checks: both cipher suites (SHA-256 and SHA-384 PSKs), both identity
 * versions, an unknown identity and a wrong key refused, a plain ICReq on
 * the TLS listener refused, the discovery log entry of the TLS port (TREQ
 * required, TSAS SECTYPE TLS 1.3), and the Connect bound to the PSK
 * identity: another host or subsystem NQN than the identity's is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <nvme/types.h>
#include <openssl/ssl.h>

#include "../lib/inproc_target.h"
#include "../lib/nvmf_client.h"
#include "../lib/tls_test_conf.h"
#include "nvme_psk.h"
#include "tcp.h"

#define SUBNQN "nqn.2026-11.io.znstgt:tls"
#define HOST256 "nqn.2026-11.io.znstgt:host-sha256"
#define HOST384 "nqn.2026-11.io.znstgt:host-sha384"
#define LBA 4096u
/* Connect Invalid Host with DNR, as nvmf_cmd() returns a status. */
#define INVALID_HOST ((uint16_t)(0x4000u | 0x100u | NVME_SC_CONNECT_INVALID_HOST))
/* Connect response DW0 bit 17: AUTHREQ.ATR (DH-HMAC-CHAP required). */
#define ATR (1u << 17)

static struct inproc_target target;
static char plain_port[NVMF_TRSVCID_SIZE], tls_port[NVMF_TRSVCID_SIZE];

static int setup(void **state)
{
	static const struct inproc_file files[] = {
		PSK384_FILE,
		{ "conf/tls.ini", TLS_TEST_SUBSYS(SUBNQN, HOST384, HOST256)
		  /* A DH-HMAC-CHAP secret too: TLS queues are not asked for it. */
		  "dhchap_secret = DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:\n",
		  0644 },
		{ NULL, NULL, 0 },
	};
	char err[512];

	(void)state;
	signal(SIGPIPE, SIG_IGN); /* a refused handshake closes under the client's writes */
	if (inproc_target_up(&target, files, "listen = 127.0.0.1:4420\ntls_listen = 127.0.0.1:4421\n",
			     err, sizeof(err)))
		fail_msg("%s", err);
	snprintf(plain_port, sizeof(plain_port), "%s", tcp_listener_port(0)->trsvcid);
	assert_true(tcp_listener_port(1)->tls);
	snprintf(tls_port, sizeof(tls_port), "%s", tcp_listener_port(1)->trsvcid);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	inproc_target_stop(&target);
	return 0;
}

/* ---- the OpenSSL PSK client ---- */

static struct nvme_tls_psk client_psk;

static int use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		       SSL_SESSION **sess)
{
	static const unsigned char suite[2][2] = { { 0x13, 0x01 }, { 0x13, 0x02 } };
	SSL_SESSION *s = SSL_SESSION_new();

	(void)md;
	assert_non_null(s);
	assert_true(SSL_SESSION_set1_master_key(s, client_psk.key, client_psk.len));
	assert_true(SSL_SESSION_set_cipher(s, SSL_CIPHER_find(ssl, suite[client_psk.hash == 2])));
	assert_true(SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION));
	*id = (const unsigned char *)client_psk.identity;
	*idlen = strlen(client_psk.identity);
	*sess = s;
	return 1;
}

static int tcp_to(const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = { .tv_sec = 10 };

	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

struct tls_link {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;          /* TCP to the target */
	int pair[2];     /* [0] for the nvmf client, [1] for the relay */
	pthread_t relay;
};

/* Bytes between the client's socketpair end and the TLS connection. */
static void *relay_main(void *arg)
{
	struct tls_link *l = arg;
	char buf[65536];

	for (;;) {
		struct pollfd p[2] = { { l->fd, POLLIN, 0 }, { l->pair[1], POLLIN, 0 } };

		if (!SSL_pending(l->ssl) && poll(p, 2, -1) < 0)
			break;
		if (SSL_pending(l->ssl) || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			int n = SSL_read(l->ssl, buf, sizeof(buf));
			if (n <= 0 || write(l->pair[1], buf, (size_t)n) != n)
				break;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(l->pair[1], buf, sizeof(buf));
			if (n <= 0 || SSL_write(l->ssl, buf, (int)n) != n)
				break;
		}
	}
	shutdown(l->pair[1], SHUT_RDWR);
	return NULL;
}

static int tls_connect(struct tls_link *l);

/* TLS to the TLS listener as hostnqn with its configured PSK text (the
 * identity of `version`, HKDF encoding kdf). Returns 1 when the handshake
 * worked (relay running, l->pair[0] ready for an nvmf client), else 0. */
static int tls_up(struct tls_link *l, const char *hostnqn, const char *psk_text, int version,
		  enum nvme_psk_kdf kdf)
{
	char err[256];
	struct nvme_secret *psk = nvme_secret_parse(NVME_SECRET_TLS_PSK, psk_text, err,
						    sizeof(err));

	assert_non_null(psk);
	assert_int_equal(nvme_tls_psk_derive(psk, hostnqn, SUBNQN, version, kdf, &client_psk,
					     err, sizeof(err)), 0);
	nvme_secret_free(psk);
	return tls_connect(l);
}

/* TLS with client_psk; 1 when the handshake worked. */
static int tls_connect(struct tls_link *l)
{
	memset(l, 0, sizeof(*l));
	l->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(l->ctx);
	assert_true(SSL_CTX_set_min_proto_version(l->ctx, TLS1_3_VERSION));
	assert_true(SSL_CTX_set_ciphersuites(l->ctx, client_psk.hash == 2
						    ? "TLS_AES_256_GCM_SHA384"
						    : "TLS_AES_128_GCM_SHA256"));
	SSL_CTX_set_psk_use_session_callback(l->ctx, use_session);
	l->ssl = SSL_new(l->ctx);
	l->fd = tcp_to(tls_port);
	SSL_set_fd(l->ssl, l->fd);
	if (SSL_connect(l->ssl) != 1) {
		SSL_free(l->ssl);
		SSL_CTX_free(l->ctx);
		close(l->fd);
		return 0;
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, l->pair), 0);
	assert_int_equal(pthread_create(&l->relay, NULL, relay_main, l), 0);
	return 1;
}

static void tls_down(struct tls_link *l)
{
	shutdown(l->fd, SHUT_RDWR);
	shutdown(l->pair[1], SHUT_RDWR);
	pthread_join(l->relay, NULL);
	SSL_free(l->ssl);
	SSL_CTX_free(l->ctx);
	close(l->fd);
	close(l->pair[1]);
}

/* A Linux host's bring-up and a verified write and read, all inside TLS. */
static void use_target(struct tls_link *l, const char *hostnqn, uint64_t slba)
{
	struct nvmf_client admin, io;
	struct nvme_cqe cqe;
	static struct nvme_id_ctrl id;
	uint8_t out[LBA], in[LBA];

	nvmf_client_init(&admin, l->pair[0]);
	assert_int_equal(nvmf_icreq(&admin, false, false), 0);
	if (nvmf_connect(&admin, 0, 32, 30000, hostnqn, SUBNQN, 0xffff, 0, &cqe))
		fail_msg("connect: %s", admin.err);
	assert_false(le64toh(cqe.result) & ATR);
	if (nvmf_enable(&admin, 5000))
		fail_msg("enable: %s", admin.err);
	assert_int_equal(nvmf_identify(&admin, NVME_IDENTIFY_CNS_CTRL, 0, 0, &id, NULL), 0);
	assert_string_equal(id.subnqn, SUBNQN);

	/* An I/O queue is a TLS connection of its own. */
	struct tls_link l2;
	assert_int_equal(tls_up(&l2, hostnqn, strcmp(hostnqn, HOST256) == 0 ? PSK256 : PSK384,
				0, NVME_PSK_KDF_LIBNVME), 1);
	nvmf_client_init(&io, l2.pair[0]);
	assert_int_equal(nvmf_icreq(&io, false, false), 0);
	if (nvmf_connect(&io, 1, 32, 0, hostnqn, SUBNQN, admin.cntlid, 0, &cqe))
		fail_msg("I/O connect: %s", io.err);
	assert_false(le64toh(cqe.result) & ATR);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 13 + slba);
	assert_int_equal(nvmf_write(&io, 1, slba, 1, out, LBA, NULL), 0);
	assert_int_equal(nvmf_read(&io, 1, slba, 1, in, LBA, NULL), 0);
	assert_memory_equal(in, out, LBA);
	nvmf_close(&io);
	tls_down(&l2);
	nvmf_close(&admin);
}

static void test_sha256_psk(void **state)
{
	struct tls_link l;

	(void)state;
	assert_int_equal(tls_up(&l, HOST256, PSK256, 0, NVME_PSK_KDF_LIBNVME), 1);
	assert_string_equal(SSL_CIPHER_get_name(SSL_get_current_cipher(l.ssl)),
			    "TLS_AES_128_GCM_SHA256");
	use_target(&l, HOST256, 5);
	tls_down(&l);
}

static void test_sha384_psk_identity_v1(void **state)
{
	struct tls_link l;

	(void)state;
	/* Version 1 identities (with the PSK digest) in either encoding. */
	assert_int_equal(tls_up(&l, HOST384, PSK384, 1, NVME_PSK_KDF_RFC8446), 1);
	assert_string_equal(SSL_CIPHER_get_name(SSL_get_current_cipher(l.ssl)),
			    "TLS_AES_256_GCM_SHA384");
	use_target(&l, HOST384, 9);
	tls_down(&l);
	assert_int_equal(tls_up(&l, HOST384, PSK384, 1, NVME_PSK_KDF_LIBNVME), 1);
	tls_down(&l);
}

static void test_refused(void **state)
{
	struct tls_link l;
	struct nvmf_client c;

	(void)state;
	/* The other host's PSK under this host's identity: wrong key. */
	assert_int_equal(tls_up(&l, HOST256, PSK384, 0, NVME_PSK_KDF_LIBNVME), 0);
	/* A host with no psk configured: unknown identity. */
	assert_int_equal(tls_up(&l, "nqn.2026-11.io.znstgt:stranger", PSK256, 0,
				NVME_PSK_KDF_LIBNVME), 0);
	/* v0 identity with the other encoding: the right identity, the wrong key. */
	assert_int_equal(tls_up(&l, HOST256, PSK256, 0, NVME_PSK_KDF_RFC8446), 0);

	/* A plain ICReq on the TLS listener: the connection is closed. */
	nvmf_client_init(&c, tcp_to(tls_port));
	assert_int_not_equal(nvmf_icreq(&c, false, false), 0);
	nvmf_close(&c);
	/* The plain listener still works in clear text. */
	assert_int_equal(nvmf_tcp_connect(&c, "127.0.0.1", plain_port, false, false), 0);
	nvmf_close(&c);
}

/* The discovery log, read on the plain listener, tells hosts the TLS port
 * needs TLS 1.3. */
static void test_discovery_entry(void **state)
{
	struct nvmf_client c;
	struct nvme_cqe cqe;
	struct nvme_sqe sqe;
	static uint8_t log[4096];
	const struct nvmf_discovery_log *dl = (const void *)log;
	int tls_entries = 0, plain_entries = 0;

	(void)state;
	assert_int_equal(nvmf_tcp_connect(&c, "127.0.0.1", plain_port, false, false), 0);
	assert_int_equal(nvmf_connect(&c, 0, 32, 30000, HOST256, NVME_DISC_SUBSYS_NAME, 0xffff, 0,
				      &cqe), 0);
	assert_int_equal(nvmf_enable(&c, 5000), 0);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = nvme_admin_get_log_page;
	sqe.cdw10 = htole32(NVME_LOG_LID_DISCOVER | (uint32_t)(sizeof(log) / 4 - 1) << 16);
	assert_int_equal(nvmf_cmd(&c, &sqe, NULL, 0, log, sizeof(log), NULL), 0);
	for (uint64_t i = 0; i < le64toh(dl->numrec) && i < 15; i++) {
		const struct nvmf_disc_log_entry *e = &dl->entries[i];
		if (strcmp(e->subnqn, SUBNQN) != 0)
			continue;
		if (strcmp(e->trsvcid, tls_port) == 0) {
			tls_entries++;
			assert_int_equal(e->treq & 3, NVMF_TREQ_REQUIRED);
			assert_int_equal(e->tsas.tcp.sectype, NVMF_TCP_SECTYPE_TLS13);
		} else {
			plain_entries++;
			assert_int_equal(e->tsas.tcp.sectype, NVMF_TCP_SECTYPE_NONE);
		}
	}
	assert_int_equal(tls_entries, 1);
	assert_int_equal(plain_entries, 1);
	nvmf_close(&c);
}

/* nvme discover --tls: the discovery controller over TLS, with the PSK the
 * host has for a subsystem it may use, under the discovery NQN. */
static void test_discovery_over_tls(void **state)
{
	char err[256];
	struct nvme_secret *psk = nvme_secret_parse(NVME_SECRET_TLS_PSK, PSK256, err, sizeof(err));
	struct tls_link l;
	struct nvmf_client c;
	struct nvme_cqe cqe;

	(void)state;
	assert_non_null(psk);
	assert_int_equal(nvme_tls_psk_derive(psk, HOST256, NVME_DISC_SUBSYS_NAME, 0,
					     NVME_PSK_KDF_LIBNVME, &client_psk, err, sizeof(err)),
			 0);
	nvme_secret_free(psk);
	assert_int_equal(tls_connect(&l), 1);
	nvmf_client_init(&c, l.pair[0]);
	assert_int_equal(nvmf_icreq(&c, false, false), 0);
	assert_int_equal(nvmf_connect(&c, 0, 32, 30000, HOST256, NVME_DISC_SUBSYS_NAME, 0xffff, 0,
				      &cqe), 0);
	nvmf_close(&c);
	tls_down(&l);
}

/* ICReq on a TLS link, then a Connect: its status (0 = connected). */
static int connect_on(struct tls_link *l, struct nvmf_client *c, uint16_t qid,
		      const char *hostnqn, const char *subnqn, uint16_t cntlid, uint32_t *ipo)
{
	struct nvme_cqe cqe;
	int st;

	nvmf_client_init(c, l->pair[0]);
	assert_int_equal(nvmf_icreq(c, false, false), 0);
	st = nvmf_connect(c, qid, 32, qid ? 0 : 30000, hostnqn, subnqn, cntlid, 0, &cqe);
	*ipo = (uint32_t)le64toh(cqe.result);
	return st;
}

static void expect_refused(const char *psk_host, const char *psk_text, const char *psk_subnqn,
			   uint16_t qid, const char *hostnqn, const char *subnqn, uint16_t cntlid,
			   size_t ipo_field)
{
	char err[256];
	struct nvme_secret *psk = nvme_secret_parse(NVME_SECRET_TLS_PSK, psk_text, err,
						    sizeof(err));
	struct tls_link l;
	struct nvmf_client c;
	uint32_t ipo;

	assert_non_null(psk);
	assert_int_equal(nvme_tls_psk_derive(psk, psk_host, psk_subnqn, 0, NVME_PSK_KDF_LIBNVME,
					     &client_psk, err, sizeof(err)), 0);
	nvme_secret_free(psk);
	assert_int_equal(tls_connect(&l), 1);
	assert_int_equal(connect_on(&l, &c, qid, hostnqn, subnqn, cntlid, &ipo), INVALID_HOST);
	/* IPO: bit 16 (in the Connect data), the offset of the NQN that differs. */
	assert_int_equal(ipo, (1u << 16) | ipo_field);
	nvmf_close(&c);
	tls_down(&l);
}

/*
 * The TLS handshake proves the PSK of one identity, which names a host and
 * a subsystem: the Connect on that connection must name the same ones.
 * Without this, a host holding its own PSK could Connect as another host
 * (admin or I/O queue, the latter into that host's controller).
 */
static void test_connect_bound_to_identity(void **state)
{
	struct tls_link l;
	struct nvmf_client admin, io;
	uint32_t ipo;

	(void)state;
	/* HOST384's PSK, Connect as HOST256 (which has a PSK too). */
	expect_refused(HOST384, PSK384, SUBNQN, 0, HOST256, SUBNQN, 0xffff,
		       offsetof(struct nvmf_connect_data, hostnqn));
	/* HOST256's PSK for SUBNQN, Connect to the discovery controller. */
	expect_refused(HOST256, PSK256, SUBNQN, 0, HOST256, NVME_DISC_SUBSYS_NAME, 0xffff,
		       offsetof(struct nvmf_connect_data, subsysnqn));
	/* A discovery identity: another host, or an I/O subsystem, refused. */
	expect_refused(HOST256, PSK256, NVME_DISC_SUBSYS_NAME, 0, HOST384,
		       NVME_DISC_SUBSYS_NAME, 0xffff, offsetof(struct nvmf_connect_data, hostnqn));
	expect_refused(HOST256, PSK256, NVME_DISC_SUBSYS_NAME, 0, HOST256, SUBNQN, 0xffff,
		       offsetof(struct nvmf_connect_data, subsysnqn));

	/* HOST256's controller; HOST384 with its own PSK tries to add an I/O
	 * queue to it claiming to be HOST256. */
	assert_int_equal(tls_up(&l, HOST256, PSK256, 0, NVME_PSK_KDF_LIBNVME), 1);
	assert_int_equal(connect_on(&l, &admin, 0, HOST256, SUBNQN, 0xffff, &ipo), 0);
	assert_int_equal(nvmf_enable(&admin, 5000), 0);
	expect_refused(HOST384, PSK384, SUBNQN, 1, HOST256, SUBNQN, admin.cntlid,
		       offsetof(struct nvmf_connect_data, hostnqn));
	/* The controller is unharmed: its own host's I/O queue still connects. */
	struct tls_link l2;
	assert_int_equal(tls_up(&l2, HOST256, PSK256, 0, NVME_PSK_KDF_LIBNVME), 1);
	assert_int_equal(connect_on(&l2, &io, 1, HOST256, SUBNQN, admin.cntlid, &ipo), 0);
	nvmf_close(&io);
	tls_down(&l2);
	nvmf_close(&admin);
	tls_down(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_psk),
		cmocka_unit_test(test_sha384_psk_identity_v1),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_discovery_entry),
		cmocka_unit_test(test_discovery_over_tls),
		cmocka_unit_test(test_connect_bound_to_identity),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
