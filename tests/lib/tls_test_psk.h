/*
 * The TLS PSKs the TLS component tests configure and offer (NVMe TCP
 * Transport 3.6.1.5 interchange format), and the file the SHA-384 one is kept
 * in, as an operator would keep it (psk_file = psk384 in a subsystem file).
 */
#ifndef ZNSTGT_TLS_TEST_PSK_H
#define ZNSTGT_TLS_TEST_PSK_H

/* 32 bytes 64..83 hex (SHA-256), 48 bytes 00..2f (SHA-384). */
#define PSK256 "NVMeTLSkey-1:01:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOeXryU:"
#define PSK384 "NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ==:"

/* An inproc_file (inproc_target.h): conf/psk384, readable by its owner only. */
#define PSK384_FILE { "conf/psk384", PSK384 "\n", 0600 }

#endif
