# ngx_dtls: build nginx with the module, run it, test it.
#
#   make             nginx with the module built in (build/nginx/sbin/nginx)
#                    and as a dynamic module
#                    (build/nginx/modules/ngx_stream_dtls_module.so)
#   make run         nginx on 127.0.0.1:5684 in front of a UDP echo backend
#   make test        the test suite (prove)
#   make bench       the benchmark: docs/benchmarks.md, .json, bench-*.png
#
# NGINX_SRC=/path/to/nginx-1.22.1 builds against that tree instead of
# Debian's source package.

SHELL      = /bin/sh
TOP       := $(abspath .)
BUILD      = $(TOP)/build
PREFIX     = $(BUILD)/nginx
NGINX_SRC ?= $(BUILD)/src/nginx
SRC       := $(abspath $(NGINX_SRC))
JOBS      ?= 2
CC        ?= cc

MODULE_SRCS = config ngx_dtls_module.c $(wildcard src/*.c src/*.h)

NGINX_CONFIGURE = --prefix=$(PREFIX) \
                  --with-compat --with-debug \
                  --without-http \
                  --with-stream --with-stream_ssl_module \
                  --with-cc-opt="$(NGINX_CC_OPT)" \
                  --with-ld-opt="$(NGINX_LD_OPT)"
NGINX_CC_OPT ?= -O2 -g
NGINX_LD_OPT ?=

TOOLS = $(BUILD)/tools/dtls_client $(BUILD)/tools/udp_echo \
        $(BUILD)/tools/udp_relay $(BUILD)/tools/dtls_load \
        $(BUILD)/tools/dtls_floor $(BUILD)/tools/freescan.so \
        $(BUILD)/tools/dtls_record_diff

# nginx and the module under AddressSanitizer and UBSan, for make test-asan;
# nginx core copies empty strings from NULL (ngx_pstrdup() at start-up),
# so that one check is off
ASAN_NGINX = $(BUILD)/obj-asan/nginx
ASAN_CC_OPT = -O1 -g -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize=nonnull-attribute
ASAN_LOGS = $(BUILD)/asan-logs

# fuzzing: clang and libFuzzer, see t/fuzz/README.md
FUZZ_SECONDS ?= 60

.PHONY: all deps source run test test-asan fuzz bench tools interop-report \
        clean distclean

all: $(PREFIX)/sbin/nginx $(PREFIX)/modules/ngx_stream_dtls_module.so

deps:
	@sh scripts/deps.sh

source: deps
	@sh scripts/nginx-src.sh $(SRC)

# nginx with the module compiled in

$(BUILD)/obj-static/Makefile: config | source
	cd $(SRC) && ./configure $(NGINX_CONFIGURE) \
	    --builddir=$(BUILD)/obj-static --add-module=$(TOP) \
	    > $(BUILD)/configure-static.log
	@echo "configured nginx (static module)"

$(PREFIX)/sbin/nginx: $(BUILD)/obj-static/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(SRC) -f $(BUILD)/obj-static/Makefile -j$(JOBS) binary
	mkdir -p $(PREFIX)/sbin $(PREFIX)/logs $(PREFIX)/conf
	cp $(BUILD)/obj-static/nginx $@.new && mv -f $@.new $@

# the same nginx without it, and the module to load with load_module

$(BUILD)/obj-dynamic/Makefile: config | source
	cd $(SRC) && ./configure $(NGINX_CONFIGURE) \
	    --builddir=$(BUILD)/obj-dynamic --add-dynamic-module=$(TOP) \
	    > $(BUILD)/configure-dynamic.log
	@echo "configured nginx (dynamic module)"

$(PREFIX)/modules/ngx_stream_dtls_module.so: $(BUILD)/obj-dynamic/Makefile \
                                             $(MODULE_SRCS)
	$(MAKE) -C $(SRC) -f $(BUILD)/obj-dynamic/Makefile -j$(JOBS) \
	    binary modules
	mkdir -p $(PREFIX)/sbin $(PREFIX)/modules
	cp $(BUILD)/obj-dynamic/nginx $(PREFIX)/sbin/nginx-compat.new
	mv -f $(PREFIX)/sbin/nginx-compat.new $(PREFIX)/sbin/nginx-compat
	cp $(BUILD)/obj-dynamic/ngx_stream_dtls_module.so $@.new && mv -f $@.new $@

# the same nginx with the module, under the sanitizers

$(BUILD)/obj-asan/Makefile: config | source
	cd $(SRC) && ./configure --with-compat --with-debug --without-http \
	    --with-stream --with-stream_ssl_module \
	    --with-cc-opt="$(ASAN_CC_OPT)" \
	    --with-ld-opt="-fsanitize=address,undefined" \
	    --builddir=$(BUILD)/obj-asan --add-module=$(TOP) \
	    > $(BUILD)/configure-asan.log
	@echo "configured nginx (sanitizers)"

$(ASAN_NGINX): $(BUILD)/obj-asan/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(SRC) -f $(BUILD)/obj-asan/Makefile -j$(JOBS) binary

# test tools

tools: $(TOOLS)

$(BUILD)/tools/%: t/tools/%.c t/tools/addr.h
	@mkdir -p $(BUILD)/tools
	$(CC) -O2 -g -Wall -Wextra -o $@ $< -lssl -lcrypto -lpthread

# the module's record layer against OpenSSL's DTLS (t/dtls_record.t): its
# source file alone, against the headers of the configured nginx (as
# t/fuzz/Makefile compiles module files), with nothing of nginx linked in

RECORD_INCS = -I $(BUILD)/obj-static -I $(SRC)/src/core -I $(SRC)/src/event \
              -I $(SRC)/src/event/modules -I $(SRC)/src/os/unix -I $(TOP)/src

$(BUILD)/tools/dtls_record_diff: t/tools/dtls_record_diff.c \
                                 src/ngx_stream_dtls_record.c \
                                 src/ngx_stream_dtls_record.h \
                                 $(BUILD)/obj-static/Makefile
	@mkdir -p $(BUILD)/tools
	$(CC) -O2 -g -Wall -Wextra $(RECORD_INCS) -o $@ \
	    t/tools/dtls_record_diff.c src/ngx_stream_dtls_record.c \
	    -lssl -lcrypto

# an LD_PRELOAD shim that searches freed memory for secrets (t/dtls_psk_wipe.t)

$(BUILD)/tools/freescan.so: t/tools/freescan.c
	@mkdir -p $(BUILD)/tools
	$(CC) -O2 -g -Wall -Wextra -shared -fPIC -o $@ $< -lssl -lcrypto

run: all tools
	@sh scripts/run.sh

# independent clients the tests use
TEST_PACKAGES = openssl gnutls-bin libcoap3-bin golang-go \
                golang-github-pion-dtls.v2-dev \
                golang-github-pires-go-proxyproto-dev

test: all tools
	@sh scripts/deps.sh $(TEST_PACKAGES)
	@sh scripts/interop-deps.sh pion node pion_proxy pp_go pp_node
	prove -I t/lib t/

# the whole suite against the sanitized nginx; any report fails it

test-asan: all tools $(ASAN_NGINX)
	@sh scripts/deps.sh $(TEST_PACKAGES)
	@sh scripts/interop-deps.sh pion node pion_proxy pp_go pp_node
	rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	TEST_NGINX_BINARY=$(ASAN_NGINX) TEST_NGINX_ASAN=1 \
	ASAN_OPTIONS=detect_leaks=1:log_path=$(ASAN_LOGS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_LOGS)/ubsan \
	    prove -I t/lib t/
	@if ls $(ASAN_LOGS)/* >/dev/null 2>&1; then \
	    cat $(ASAN_LOGS)/*; echo "test-asan: sanitizer reports above"; \
	    exit 1; \
	fi
	@echo "test-asan: no sanitizer reports"

# each libFuzzer target for FUZZ_SECONDS; a crash fails it

fuzz:
	$(MAKE) -C t/fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS) NGINX_SRC=$(SRC) \
	    JOBS=$(JOBS)

# side by side with nginx's plain UDP proxy, a pion/dtls proxy and
# OpenSSL's in-process floor (bench/bench.pl; BENCH_SECONDS, BENCH_REPEAT)

BENCH_PACKAGES = gnuplot-nox golang-go golang-github-pion-dtls.v2-dev \
                 procps util-linux

bench: all tools
	@sh scripts/deps.sh $(BENCH_PACKAGES)
	@sh scripts/interop-deps.sh pion_proxy
	perl bench/bench.pl

# docs/interop.md from the interop tests' last run

interop-report:
	perl scripts/interop-report.pl > docs/interop.md

clean:
	rm -rf $(BUILD)/obj-static $(BUILD)/obj-dynamic $(BUILD)/obj-asan \
	       $(BUILD)/obj-fuzz $(BUILD)/fuzz $(BUILD)/tools $(PREFIX)

distclean:
	rm -rf $(BUILD)

# make deb, and its package for make test (Debian 12)
include packaging/deb.mk
