# Parley — GNU Makefile.
#
#   make            build everything into build/ (or build-san/ with SAN=...)
#   make run        install what is missing, build, start your node
#   make test       install what is missing, build, run the whole suite
#                   (normal build, then address+undefined sanitizers)
#   make fuzz       build the libFuzzer targets and run each for FUZZ_SECONDS
#   make install PREFIX=DIR
#   make fmt-check
#
# Every dependency comes from pkg-config; `make deps` installs the Debian
# packages that are missing (as root, or through sudo).

PKGS      := libsodium libzmq libczmq sqlite3 jansson avahi-client
DEB_PKGS  := build-essential pkg-config libsodium-dev libzmq3-dev libczmq-dev \
             libsqlite3-dev libjansson-dev libavahi-client-dev avahi-daemon avahi-utils dbus \
             iproute2 nftables clang clang-format libclang-rt-14-dev jq
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
CFLAGS    += -std=c11 -D_GNU_SOURCE $(WARN) -fno-strict-aliasing
CFLAGS    += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
ifneq ($(SAN),)
CFLAGS    += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=$(SAN)
endif

PROTO_SRC := $(wildcard proto/*.c)
STORE_SRC := $(wildcard store/*.c)
DISC_SRC  := $(wildcard discovery/*.c)
NODE_SRC  := $(wildcard node/*.c)
PROTO_OBJ := $(PROTO_SRC:%.c=$(BUILD)/%.o)
STORE_OBJ := $(STORE_SRC:%.c=$(BUILD)/%.o)
NODE_OBJ  := $(NODE_SRC:%.c=$(BUILD)/%.o)
DISC_OBJ  := $(DISC_SRC:%.c=$(BUILD)/%.o)

BINS := $(BUILD)/parleyd $(BUILD)/parley $(BUILD)/proto_selftest $(BUILD)/store_selftest \
        $(BUILD)/node_selftest $(BUILD)/fs_attack $(BUILD)/zap_probe $(BUILD)/hostile_peer $(BUILD)/mdns_probe \
        $(BUILD)/bench $(BUILD)/bench_sync_engine $(BUILD)/bench_sync $(BUILD)/netem_tap

.PHONY: all deps need run test check fuzz install clean fmt fmt-check

all: $(BINS)

# A missing dependency stops the build with the package that provides it.
need:
	@for pair in libsodium:libsodium-dev libzmq:libzmq3-dev libczmq:libczmq-dev \
	             sqlite3:libsqlite3-dev jansson:libjansson-dev avahi-client:libavahi-client-dev; do \
	    pc=$${pair%%:*}; deb=$${pair#*:}; \
	    pkg-config --exists $$pc 2>/dev/null || { \
	        echo "parley: missing $$pc: install the Debian package $$deb (or run make deps)" >&2; \
	        exit 1; }; \
	done

deps:
	@sh tools/deps.sh $(DEB_PKGS)

$(BUILD)/%.o: %.c $(wildcard */*.h) | need
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libproto.a: $(PROTO_OBJ)
	ar rcs $@ $^
$(BUILD)/libstore.a: $(STORE_OBJ)
	ar rcs $@ $^
$(BUILD)/libnode.a: $(NODE_OBJ)
	ar rcs $@ $^
$(BUILD)/libdiscovery.a: $(DISC_OBJ) $(BUILD)/.keep
	ar rcs $@ $(DISC_OBJ)
$(BUILD)/.keep:
	@mkdir -p $(BUILD) && touch $@

# Link order proves the layering: a self-test links only its layer and below.
$(BUILD)/proto_selftest: $(BUILD)/tests/proto_selftest.o $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ -lsodium -o $@
$(BUILD)/store_selftest: $(BUILD)/tests/store_selftest.o $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ -lsqlite3 -lsodium -o $@
$(BUILD)/node_selftest: $(BUILD)/tests/node_selftest.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/parleyd: $(BUILD)/tools/parleyd.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/parley: $(BUILD)/tools/parley.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/fs_attack: $(BUILD)/tests/fs_attack.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/zap_probe: $(BUILD)/tests/zap_probe.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/mdns_probe: $(BUILD)/tests/mdns_probe.o $(BUILD)/libdiscovery.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/hostile_peer: $(BUILD)/tests/hostile_peer.o $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/netem_tap: $(BUILD)/tests/netem_tap.o
	$(CC) $(LDFLAGS) $^ -o $@
$(BUILD)/bench_sync_engine: $(BUILD)/tools/bench/sync_engine.o $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ -lsodium -o $@
$(BUILD)/bench: $(BUILD)/tools/bench/bench.o $(BUILD)/tools/bench/nodes.o $(BUILD)/libnode.a $(BUILD)/libdiscovery.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/bench_sync: $(BUILD)/tools/bench/sync_nodes.o $(BUILD)/tools/bench/nodes.o $(BUILD)/libnode.a $(BUILD)/libstore.a $(BUILD)/libproto.a
	$(CC) $(LDFLAGS) $^ -lsqlite3 -lsodium -ljansson -o $@

run: deps
	@$(MAKE) --no-print-directory all
	@ARGS="$(ARGS)" sh tools/run.sh $(BUILD)

# The whole suite: normal build, then the sanitizer build, one summary line.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=address,undefined all
	@$(MAKE) --no-print-directory fuzz-build
	@bash tests/run.sh

check: all
	@bash tests/run.sh

# ---- fuzzing (clang + libFuzzer) ----
FUZZ_TARGETS  := envelope frame keyfile api content prekey endpoint txt config addr sync
FUZZ_SECONDS  ?= 60
FUZZ_BUILD    := build-fuzz
FUZZ_CFLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
                 $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(PROTO_SRC) node/api_req.c node/config.c $(wildcard */*.h)
	@mkdir -p $(FUZZ_BUILD)
	clang $(FUZZ_CFLAGS) $< $(PROTO_SRC) node/api_req.c node/config.c -o $@ -lsodium -ljansson

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus-$$t; \
	    echo "fuzz $$t for $(FUZZ_SECONDS)s"; \
	    $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=70000 \
	        $(FUZZ_BUILD)/corpus-$$t tests/fuzz/corpus/$$t || exit 1; \
	done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/parleyd $(BUILD)/parley $(DESTDIR)$(PREFIX)/bin/

fmt:
	clang-format -i node/*.[ch] proto/*.[ch] store/*.[ch] discovery/*.[ch] tools/*.c tools/*/*.c tests/*.c tests/*/*.c

fmt-check:
	@clang-format --dry-run --Werror node/*.[ch] proto/*.[ch] store/*.[ch] discovery/*.[ch] tools/*.c tools/*/*.c tests/*.c tests/*/*.c

clean:
	rm -rf build build-san build-fuzz
