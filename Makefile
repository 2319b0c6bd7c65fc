# Parley — GNU Makefile.
#
#   make            build everything into build/ (or build-san/ with SAN=...)
#   make run        install what is missing, build, start your node
#   make check      build build/, build-san/ (SAN=address,undefined) and the
#                   fuzz targets, then run the whole suite (tests/run.sh)
#   make test       make deps, then make check
#   make fuzz       build the libFuzzer targets into build-fuzz/ and run every
#                   one for FUZZ_SECONDS; one line per target and a total
#   make install PREFIX=DIR
#   make fmt-check
#
# Every dependency comes from pkg-config; `make deps` installs the Debian
# packages that are missing (as root, or through sudo).
#
# Objects depend on the headers they include (-MMD -MP writes a .d file beside
# each object) and on the flags they were built with: each build folder keeps
# its compiler, flags and libraries in .flags, rewritten only when they change,
# so `make CFLAGS=-O0` after `make` rebuilds everything there and a second
# `make CFLAGS=-O0` does nothing. CFLAGS is yours (default -O2 -g); the
# standard, the warnings, the pkg-config flags and SAN's flags always come first.

PKGS      := libsodium libzmq libczmq sqlite3 jansson avahi-client
# Beyond the libraries and compilers, what the suite runs that a minimal Debian
# 12 may lack: jq (every integration test), iproute2, nftables, avahi-*, dbus,
# procps (sysctl, tests/netns/lib.sh), python3 (tests/netns/t_mdns_routed.sh)
# and perl with Time::HiRes (tests/netns/t_branch.sh; perl-base lacks it).
DEB_PKGS  := build-essential pkg-config libsodium-dev libzmq3-dev libczmq-dev \
             libsqlite3-dev libjansson-dev libavahi-client-dev avahi-daemon avahi-utils dbus \
             iproute2 nftables clang clang-format libclang-rt-14-dev jq procps python3 perl sqlite3 \
             libncurses-dev tmux
PREFIX    ?= /usr/local
SAN       ?=
ifeq ($(SAN),)
BUILD     ?= build
else
BUILD     ?= build-san
endif

CC        ?= cc
WARN      := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
             -Wmissing-prototypes -Wvla -Wno-missing-field-initializers
CFLAGS    ?= -O2 -g
# Ours, kept apart from CFLAGS so that `make CFLAGS=...` cannot drop them.
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -fno-strict-aliasing \
             -ffunction-sections -fdata-sections \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
# Each function and object in a section of its own, and the ones a program
# never reaches left out of it: parleyd carries no self-test code.
LDFLAGS   += -Wl,--gc-sections
# The terminal chat alone uses ncurses (wide).
CURSES_CFLAGS := $(shell pkg-config --cflags ncursesw 2>/dev/null)
CURSES_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null)
ifneq ($(SAN),)
BASE_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=$(SAN)
endif
ALL_CFLAGS = $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS)

PROTO_SRC := $(wildcard proto/*.c)
STORE_SRC := $(wildcard store/*.c)
DISC_SRC  := $(wildcard discovery/*.c)
NODE_SRC  := $(wildcard node/*.c)
PROTO_OBJ := $(PROTO_SRC:%.c=$(BUILD)/%.o)
STORE_OBJ := $(STORE_SRC:%.c=$(BUILD)/%.o)
NODE_OBJ  := $(NODE_SRC:%.c=$(BUILD)/%.o)
DISC_OBJ  := $(DISC_SRC:%.c=$(BUILD)/%.o)
# The terminal chat (parley chat): tools/chat/, linked into parley.
CHAT_SRC  := $(wildcard tools/chat/*.c)
CHAT_OBJ  := $(CHAT_SRC:%.c=$(BUILD)/%.o)
NODE_TEST_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/node/*.c))
MAIN_OBJ  := $(addprefix $(BUILD)/,tools/parleyd.o tools/parley.o tests/proto_selftest.o \
             tests/store_selftest.o tests/node_selftest.o tests/fs_attack.o tests/zap_probe.o \
             tests/hostile_peer.o tests/mdns_probe.o tests/netem_tap.o tools/bench/bench.o \
             tools/bench/sync_engine.o tools/bench/sync_nodes.o tools/bench/nodes.o tools/bench/hostile.o \
             tools/bench/network.o tools/bench/channel.o tools/bench/idle.o \
                          tools/qr.o tests/qr_selftest.o tests/chat_selftest.o)
ALL_OBJ   := $(PROTO_OBJ) $(STORE_OBJ) $(NODE_OBJ) $(DISC_OBJ) $(MAIN_OBJ) $(NODE_TEST_OBJ) $(CHAT_OBJ)

BINS := $(BUILD)/parleyd $(BUILD)/parley $(BUILD)/proto_selftest $(BUILD)/store_selftest \
        $(BUILD)/node_selftest $(BUILD)/fs_attack $(BUILD)/zap_probe $(BUILD)/hostile_peer $(BUILD)/mdns_probe \
        $(BUILD)/bench $(BUILD)/bench_sync_engine $(BUILD)/bench_sync $(BUILD)/bench_hostile \
        $(BUILD)/bench_network $(BUILD)/bench_channel $(BUILD)/bench_idle \
        $(BUILD)/netem_tap $(BUILD)/qr_selftest $(BUILD)/chat_selftest

.PHONY: all deps need run test check fuzz install clean fmt fmt-check FORCE

all: $(BINS)

# A missing dependency stops the build with the package that provides it.
need:
	@for pair in libsodium:libsodium-dev libzmq:libzmq3-dev libczmq:libczmq-dev \
	             sqlite3:libsqlite3-dev jansson:libjansson-dev avahi-client:libavahi-client-dev \
	             ncursesw:libncurses-dev; do \
	    pc=$${pair%%:*}; deb=$${pair#*:}; \
	    pkg-config --exists $$pc 2>/dev/null || { \
	        echo "parley: missing $$pc: install the Debian package $$deb (or run make deps)" >&2; \
	        exit 1; }; \
	done

deps:
	@sh tools/deps.sh $(DEB_PKGS)

# streq A,B: non-empty if the two strings are equal.
streq = $(if $(subst x$(1)x,,x$(2)x)$(subst x$(2)x,,x$(1)x),,t)

# STAMP FILE,VAR: the rule that keeps FILE holding the value of VAR (a name:
# values hold commas). It runs every time (FORCE) but writes the file only
# when the value changed (blanks aside: make 4.3 reads the file back with its
# newline), so what depends on FILE is rebuilt only then; it says so unless
# FILE is new.
define STAMP
$(1): FORCE
	$$(if $$(call streq,$$(strip $$(file <$$@)),$$(strip $$($(2)))),@:,$$(if $$(wildcard $$@),@echo \
	    "$(1): changed",@:)$$(shell mkdir -p $$(@D))$$(file >$$@,$$($(2))))
endef
BUILD_FLAGS = $(CC) $(ALL_CFLAGS) | $(LDFLAGS) | $(LDLIBS)
$(eval $(call STAMP,$(BUILD)/.flags,BUILD_FLAGS))

$(CHAT_OBJ): ALL_CFLAGS += $(CURSES_CFLAGS)
$(BUILD)/%.o: %.c $(BUILD)/.flags | need
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

-include $(ALL_OBJ:.o=.d)

# An archive depends on its member list (LIB.members), so removing a source
# file rebuilds it, and it is made afresh: `ar rcs` into the old one would keep
# the member of the removed file.
$(eval $(call STAMP,$(BUILD)/libproto.members,PROTO_OBJ))
$(eval $(call STAMP,$(BUILD)/libstore.members,STORE_OBJ))
$(eval $(call STAMP,$(BUILD)/libnode.members,NODE_OBJ))
$(eval $(call STAMP,$(BUILD)/libdiscovery.members,DISC_OBJ))
$(BUILD)/libproto.a: $(PROTO_OBJ) $(BUILD)/libproto.members
$(BUILD)/libstore.a: $(STORE_OBJ) $(BUILD)/libstore.members
$(BUILD)/libnode.a: $(NODE_OBJ) $(BUILD)/libnode.members
$(BUILD)/libdiscovery.a: $(DISC_OBJ) $(BUILD)/libdiscovery.members
$(BUILD)/libproto.a $(BUILD)/libstore.a $(BUILD)/libnode.a $(BUILD)/libdiscovery.a:
	@rm -f $@
	ar rcs $@ $(filter %.o,$^)

# Link order proves the layering: a self-test links only its layer and below.
$(BUILD)/proto_selftest: $(BUILD)/tests/proto_selftest.o $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ -lsodium -o $@
$(BUILD)/store_selftest: $(BUILD)/tests/store_selftest.o $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ -lsqlite3 -lsodium -o $@
$(BUILD)/node_selftest: $(BUILD)/tests/node_selftest.o $(NODE_TEST_OBJ) $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/parleyd: $(BUILD)/tools/parleyd.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/parley: $(BUILD)/tools/parley.o $(BUILD)/tools/qr.o $(CHAT_OBJ) $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(CURSES_LIBS) -o $@
# The chat's text and conversations: libc, proto/textsafe and Jansson.
$(BUILD)/chat_selftest: $(BUILD)/tests/chat_selftest.o $(BUILD)/tools/chat/text.o $(BUILD)/tools/chat/conv.o $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ -ljansson -lsodium -o $@
$(BUILD)/fs_attack: $(BUILD)/tests/fs_attack.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/zap_probe: $(BUILD)/tests/zap_probe.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/mdns_probe: $(BUILD)/tests/mdns_probe.o $(BUILD)/libdiscovery.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/hostile_peer: $(BUILD)/tests/hostile_peer.o $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
# The QR encoder uses only libc and sodium_memzero.
$(BUILD)/qr_selftest: $(BUILD)/tests/qr_selftest.o $(BUILD)/tools/qr.o
	$(CC) $(LDFLAGS) $^ -lsodium -o $@
$(BUILD)/netem_tap: $(BUILD)/tests/netem_tap.o
	$(CC) $(LDFLAGS) $^ -o $@
$(BUILD)/bench_sync_engine: $(BUILD)/tools/bench/sync_engine.o $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ -lsodium -o $@
$(BUILD)/bench: $(BUILD)/tools/bench/bench.o $(BUILD)/tools/bench/nodes.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/bench_hostile: $(BUILD)/tools/bench/hostile.o $(BUILD)/tools/bench/nodes.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/bench_network: $(BUILD)/tools/bench/network.o $(BUILD)/tools/bench/nodes.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/bench_channel: $(BUILD)/tools/bench/channel.o $(BUILD)/tools/bench/nodes.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/bench_idle: $(BUILD)/tools/bench/idle.o $(BUILD)/tools/bench/nodes.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/bench_sync: $(BUILD)/tools/bench/sync_nodes.o $(BUILD)/tools/bench/nodes.o $(BUILD)/libnode.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ -lsqlite3 -lsodium -ljansson -o $@

run: deps
	@$(MAKE) --no-print-directory all
	@ARGS="$(ARGS)" sh tools/run.sh $(BUILD)

# The whole suite on what it needs, built first, each build in its own folder
# with its own .d files and .flags: build/ (plain), build-san/ (CHECK_SAN) and
# the fuzz targets in build-fuzz/. SAN and BUILD are set on every recursive
# make, so a SAN= or BUILD= given to `make check` cannot mix the folders.
CHECK_SAN := address,undefined
check:
	@$(MAKE) --no-print-directory SAN= BUILD=build all
	@$(MAKE) --no-print-directory SAN=$(CHECK_SAN) BUILD=build-san all
	@$(MAKE) --no-print-directory fuzz-build
	@$(MAKE) --no-print-directory SAN= BUILD=build check-run

# tests/run.sh alone (what `check` ends with). Run from a make given SAN= and
# BUILD=build, so the makes that run.sh starts (install, fmt-check) inherit
# them through MAKEFLAGS, with any CFLAGS given to `make check`.
.PHONY: check-run
check-run:
	@bash tests/run.sh

# `check` with the Debian packages it needs installed first.
test: deps
	@$(MAKE) --no-print-directory check

# ---- fuzzing (clang + libFuzzer) ----
# Every tests/fuzz/fuzz_X.c is a target. Its objects and binaries live in
# build-fuzz/ (with their .d files and .flags, as above): the code under test
# is compiled once with coverage and sanitizers, each target links it whole.
FUZZ_TARGETS  := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS  ?= 60
FUZZ_BUILD    := build-fuzz
FUZZ_CC       := clang
FUZZ_CFLAGS   := -std=c11 -D_GNU_SOURCE $(WARN) -g -O1 \
                 -fsanitize=fuzzer-no-link,address,undefined \
                 $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LDFLAGS  := -fsanitize=fuzzer,address,undefined
FUZZ_LIB_OBJ  := $(addprefix $(FUZZ_BUILD)/,$(PROTO_SRC:.c=.o) node/api_req.o node/config.o)
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_ALL_FLAGS = $(FUZZ_CC) $(FUZZ_CFLAGS) | $(FUZZ_LDFLAGS)
$(eval $(call STAMP,$(FUZZ_BUILD)/.flags,FUZZ_ALL_FLAGS))
$(eval $(call STAMP,$(FUZZ_BUILD)/lib.members,FUZZ_LIB_OBJ))

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/%.o: %.c $(FUZZ_BUILD)/.flags | need
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

# A static pattern rule: its objects are explicit, so make keeps them.
$(FUZZ_BINS): $(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ) \
        $(FUZZ_BUILD)/lib.members
	$(FUZZ_CC) $(FUZZ_LDFLAGS) $(filter %.o,$^) -lsodium -ljansson -o $@

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.d)

# Every target runs for FUZZ_SECONDS even if one before it failed; one line
# per target and a total (tests/fuzz/run.sh); fails if any target failed.
fuzz: fuzz-build
	@FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/parleyd $(BUILD)/parley $(DESTDIR)$(PREFIX)/bin/

fmt:
	clang-format -i node/*.[ch] proto/*.[ch] store/*.[ch] discovery/*.[ch] tools/*.[ch] tools/*/*.[ch] tests/*.c tests/*/*.c

fmt-check:
	@clang-format --dry-run --Werror node/*.[ch] proto/*.[ch] store/*.[ch] discovery/*.[ch] tools/*.[ch] tools/*/*.[ch] tests/*.c tests/*/*.c

clean:
	rm -rf build build-san build-fuzz
