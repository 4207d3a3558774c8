# znstgt build. Sources are discovered by directory so that adding a module
# never means editing this file (doc/architecture.md has the map):
#   common/*.c            -> build/libcommon.a   (zone engine, journal, store, ...)
#   server/core/*.c       -> build/libserver.a   (controller core)
#   server/tcp/*.c        -> build/libserver.a   (NVMe/TCP transport)
#   server/*.c            -> build/libserver.a + build/znstgt (daemon: server/main.c)
#   server/ctl/*.c        -> build/znstgt-ctl    (the operator's control tool;
#                            libcommon.a for the offline inspect / check)
#   tests/unit/test_*.c   -> one CMocka binary each (pure units), run by `make check`
#   tests/component/test_*.c -> one CMocka binary each (the core, the transport or
#                            the daemon started by the test), run by `make check`
#   tests/tools/*.c       -> host-side test programs (client, load generator)
#   bench/*.c             -> benchmark programs (print figures; never in check)

CC      ?= cc
# libnvme is used for its NVMe structure definitions only (headers, no library).
PKGS    := libnvme inih cmocka libcrypto
# Debian's libev-dev ships no pkg-config file; fall back to plain -lev.
EV_CFLAGS := $(shell pkg-config --cflags libev 2>/dev/null)
EV_LIBS   := $(shell pkg-config --libs libev 2>/dev/null || echo -lev)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter -pthread -Iinclude \
           $(shell pkg-config --cflags $(PKGS)) $(EV_CFLAGS) -MMD -MP
# Each program links what it uses: the daemon and the tests parse the
# configuration (inih), run libev loops, authenticate hosts (libcrypto) and
# serve TLS listeners (libssl);
# the control tool needs none of them. --as-needed drops a library from a
# program that does not call it (the test tools, the benchmarks).
LDFLAGS += -Wl,--as-needed
LDLIBS  += $(shell pkg-config --libs inih libssl libcrypto) $(EV_LIBS) -pthread
TESTLIBS := $(shell pkg-config --libs cmocka)

B := build$(if $(SAN),-$(SAN))
ifeq ($(SAN),asan)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
LDFLAGS += -fsanitize=thread
endif

COMMON_SRC := $(wildcard common/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c server/core/*.c server/tcp/*.c server/vfio_user/*.c))
CTL_SRC    := $(wildcard server/ctl/*.c)
TEST_SRC   := $(wildcard tests/unit/test_*.c tests/component/test_*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_LIB_SRC := $(wildcard tests/lib/*.c) server/ctl/ctl_client.c
BENCH_SRC  := $(wildcard bench/*.c)

COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(B)/%.o)
TOOL_LIB_OBJ := $(TOOL_LIB_SRC:%.c=$(B)/%.o)
CTL_OBJ    := $(CTL_SRC:%.c=$(B)/%.o)
TESTS      := $(addprefix $(B)/tests/,$(basename $(notdir $(TEST_SRC))))
TOOLS      := $(TOOL_SRC:tests/tools/%.c=$(B)/tools/%)
BENCHES    := $(BENCH_SRC:bench/%.c=$(B)/bench/%)

.DEFAULT_GOAL := all
.PHONY: all deps run test check check-asan check-tsan check-long valgrind bench fuzz fuzz-smoke e2e clean

# Debian packages to build, test and run the e2e host (run as root).
DEB_PKGS := build-essential pkg-config libev-dev libnvme-dev libinih-dev libcmocka-dev \
            libssl-dev liburing-dev libjson-c-dev clang valgrind qemu-system-x86 debootstrap e2fsprogs \
            groff-base

deps:
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEB_PKGS)

# The target on the shipped configuration (127.0.0.1:4420, data in ./data).
run: $(B)/znstgt
	$(B)/znstgt -c znstgt.ini

# Everything CI runs: unit/integration/crash tests, the same under ASan+UBSan,
# then a stock Linux kernel under QEMU against the daemon.
test: check check-asan fuzz-smoke e2e
all: $(B)/znstgt $(B)/znstgt-ctl $(TESTS) $(TOOLS) $(BENCHES)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libcommon.a: $(COMMON_OBJ)
	$(AR) rcs $@ $^
$(B)/libserver.a: $(SERVER_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^ $(if $(SERVER_OBJ),,)
$(B)/libtestlib.a: $(TOOL_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(B)/znstgt: $(B)/server/main.o $(B)/libserver.a $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/znstgt-ctl: $(CTL_OBJ) $(B)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A test binary is named after its source, whichever kind (directory) it is;
# TEST_LDFLAGS_<name> adds link options of its own.
define test_rule
$(B)/tests/$(basename $(notdir $(1))): $(B)/$(1:.c=.o) $(B)/libtestlib.a $(B)/libserver.a $(B)/libcommon.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) $$(TEST_LDFLAGS_$(basename $(notdir $(1)))) -o $$@ $$^ $$(TESTLIBS) $$(LDLIBS)
endef
# test_sync_gaps steps in where ns_sync() parks on a gapped zone.
TEST_LDFLAGS_test_sync_gaps := -Wl,--wrap=zns_wait_gap
# test_reset_fallback fails one allocation (the list of a Select All Reset).
TEST_LDFLAGS_test_reset_fallback := -Wl,--wrap=malloc
# test_aen_race makes a change in the window before an event kind is re-armed.
TEST_LDFLAGS_test_aen_race := -Wl,--wrap=nvme_ctrl_event_unmask
$(foreach t,$(TEST_SRC),$(eval $(call test_rule,$(t))))

$(B)/tools/%: $(B)/tests/tools/%.o $(B)/libtestlib.a $(B)/libserver.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bench/%: $(B)/bench/%.o $(B)/libtestlib.a $(B)/libserver.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit and integration tests (CMocka). Each binary prints its own summary;
# tests/run-unit.sh adds the plain "N passed, N failed" line at the end.
check: all
	tests/run-unit.sh $(B)

check-asan:
	$(MAKE) SAN=asan check

# The same under ThreadSanitizer (build-tsan/; suppressions in
# tests/tsan.supp). Not part of `test`: a TSan build and run are slow.
check-tsan:
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp second_deadlock_stack=1 $$TSAN_OPTIONS" \
		$(MAKE) SAN=tsan check

# The long campaigns: many more kill cycles than `make check`, thousands of
# them with injected I/O faults (tests/unit/test_crash.c), and the corruption
# campaign (damaged files refused or intact, tests/unit/test_corruption.c).
check-long: all
	ZNSTGT_CRASH_CYCLES=5000 ZNSTGT_FAULT_CYCLES=3000 $(B)/tests/test_crash
	ZNSTGT_CORRUPTION_TRIALS=3000 $(B)/tests/test_corruption

# End-to-end tests: a stock Debian kernel under QEMU connects to $(B)/znstgt
# over NVMe/TCP; the vfio-user front end against QEMU's vfio-user client (a
# QEMU from Debian sid), through qtest and in a guest that sees a PCI NVMe
# controller; then blktests' nvme group runs against $(B)/znstgt inside a
# Linux 6.1 and a Linux 6.12 guest, when BLKTESTS_TARBALL names blktests'
# source (tests/e2e/README.md; the first run builds the guests and the sid
# QEMU, as root).
e2e: all
	tests/e2e/run-e2e.sh $(B)

valgrind: all
	VALGRIND=1 tests/run-unit.sh $(B)

# The NVMe/TCP matrix against a target the script starts (figures beside
# their loopback limits, doc/performance.md), then the zone engine's own.
bench: all
	bench/tcp_matrix.sh $(B)
	$(B)/bench/bench_zone

# libFuzzer targets (doc/fuzzing.md), one per parser of untrusted input, each
# linked with the real code it fuzzes. `make fuzz` runs each for FUZZ_SECONDS
# (CPU-bound: `nice make fuzz` on a shared machine) from its seeds in
# tests/fuzz/corpus/NAME; what it finds is kept in build-fuzz/corpus/NAME and
# crashes are written to build-fuzz/. FUZZ_FLAGS adds libFuzzer options.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS   ?=
FUZZ_TARGETS := pdu config control auth vfio_user resv zmeta
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Wall -Wextra -Werror \
                -Wno-unused-parameter -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all $(EV_CFLAGS)
# pdu: the NVMe/TCP receive path with the test double of the core.
FUZZ_SRC_pdu     := $(filter-out server/tcp/tcp_listener.c,$(wildcard server/tcp/*.c)) \
                    server/worker.c common/crc32c.c common/log.c common/sigbus_guard.c
FUZZ_LIBS_pdu    := $(EV_LIBS) -pthread $(shell pkg-config --libs libssl libcrypto)
FUZZ_MAXLEN_pdu  := 65536
# config: the INI reader and every section; glob() confined to the fuzzer's
# own directory (tests/fuzz/fuzz_config.c).
FUZZ_SRC_config    := $(wildcard common/config*.c) common/ana_state.c common/nvme_keys.c common/dhchap.c common/nvme_hmac.c \
                      common/errmsg.c common/log.c
FUZZ_LIBS_config   := $(shell pkg-config --libs inih libcrypto) -Wl,--wrap=glob
FUZZ_MAXLEN_config := 4096
# control: the control socket's request parser.
FUZZ_SRC_control    := server/control_req.c server/control_fault_req.c common/inject.c \
                       server/control_ana_req.c common/ana_state.c
FUZZ_MAXLEN_control := 8192
# auth: in-band authentication messages and the controller's state machine.
FUZZ_SRC_auth    := server/core/auth.c common/auth_msg.c common/dhchap.c common/nvme_hmac.c \
                    common/nvme_keys.c common/errmsg.c
FUZZ_LIBS_auth   := -lcrypto
FUZZ_MAXLEN_auth := 4096
# vfio_user: the vfio-user server's message parser and dispatcher.
FUZZ_SRC_vfio_user    := $(filter-out server/vfio_user/nvme_dev.c server/vfio_user/vfio_nvme.c,$(wildcard server/vfio_user/*.c)) \
                         server/worker.c common/log.c
FUZZ_LIBS_vfio_user   := $(EV_LIBS) -pthread
FUZZ_MAXLEN_vfio_user := 65536
# resv: the reservation state file's decoder and the state machine.
FUZZ_SRC_resv    := common/resv.c common/resv_store.c common/crc32c.c common/fault_io.c \
                    common/errmsg.c common/log.c
FUZZ_LIBS_resv   := -pthread
FUZZ_MAXLEN_resv := 4096
# zmeta: a zoned namespace's files read back damaged - recovery through
# ns_open() and znstgt-ctl check / inspect (tests/fuzz/fuzz_zmeta.c).
FUZZ_SRC_zmeta    := common/ns.c common/ns_id.c common/ns_inspect.c common/ns_precheck.c \
                     common/ns_stats.c common/zmeta.c common/zone.c common/blockstore.c \
                     common/written_map.c common/resv.c common/resv_store.c common/crc32c.c \
                     common/fault_io.c common/sigbus_guard.c common/errmsg.c common/log.c
FUZZ_LIBS_zmeta   := -pthread
FUZZ_MAXLEN_zmeta := 256
# Its inputs are lists of operations of 3 to 19 bytes: no creeping up
# from a few bytes of input (libFuzzer's -len_control).
FUZZ_OPTS_zmeta   := -len_control=0

.SECONDEXPANSION:
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_$$*) \
		$(wildcard include/*.h common/*.h server/*.h server/*/*.h tests/lib/tcp_core_double.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $< $(FUZZ_SRC_$*) -o $@ $(FUZZ_LIBS_$*)

fuzz: $(FUZZ_TARGETS:%=fuzz-%)
# Each target built and run briefly, so that none rots unnoticed (make test).
fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=5
fuzz-%: build-fuzz/fuzz_%
	@mkdir -p build-fuzz/corpus/$*
	$< -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAXLEN_$*) -timeout=10 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/$*- \
		$(if $(wildcard tests/fuzz/$*.dict),-dict=tests/fuzz/$*.dict) $(FUZZ_OPTS_$*) $(FUZZ_FLAGS) \
		build-fuzz/corpus/$* $(wildcard tests/fuzz/corpus/$*)

clean:
	rm -rf build build-*

include conf/install/install.mk

-include $(shell find $(B) -name '*.d' 2>/dev/null)
