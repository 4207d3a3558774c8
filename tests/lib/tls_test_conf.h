/*
 * What the TLS component tests configure: two TLS PSKs (NVMe TCP Transport
 * 3.6.1.5 interchange format), the file the SHA-384 one is kept in, as an
 * operator would keep it, and a subsystem whose two hosts have one each.
 */
#ifndef ZNSTGT_TLS_TEST_CONF_H
#define ZNSTGT_TLS_TEST_CONF_H

/* 32 bytes 64..83 hex (SHA-256), 48 bytes 00..2f (SHA-384). */
#define PSK256 "NVMeTLSkey-1:01:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOeXryU:"
#define PSK384 "NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ==:"

/* An inproc_file (inproc_target.h): conf/psk384, readable by its owner only. */
#define PSK384_FILE { "conf/psk384", PSK384 "\n", 0600 }

/*
 * A subsystem file's text: subsystem nqn with a 16 MiB conventional
 * namespace of 4 KiB blocks, host h384 with the PSK of PSK384_FILE, host
 * h256 with PSK256 inline. Lines after it go into h256's [host] section.
 */
#define TLS_TEST_SUBSYS(nqn, h384, h256)                                       \
	"[subsystem]\nnqn = " nqn "\n"                                         \
	"[namespace 1]\nsize = 16M\nzoned = no\nlba_size = 4096\n"             \
	"[host " h384 "]\npsk_file = psk384\n"                                 \
	"[host " h256 "]\npsk = " PSK256 "\n"

#endif
