# ngx_dtls: build nginx with the module, run it, test it.
#
#   make             nginx with the module built in (build/nginx/sbin/nginx)
#                    and as a dynamic module
#                    (build/nginx/modules/ngx_stream_dtls_module.so)
#   make run         nginx on 127.0.0.1:5684 in front of a UDP echo backend
#   make test        the test suite (prove)
#   make bench       the benchmark: docs/benchmarks.md, .json, bench-*.png,
#                    then make bench-psk
#   make bench-psk   the PSK store: a cdb of 1,000,000 identities against a
#                    text file of 10: docs/benchmarks-psk.md
#   make bench-memory  memory per idle session, OpenSSL 3.5 against 3.0:
#                    docs/benchmarks-openssl.md
#   make bench-sessions  memory per idle session, the module's records
#                    against OpenSSL's, and in dtls_session_zone, and
#                    their echo rates (BASELINE=COMMIT: also the module
#                    of that commit): docs/benchmarks-sessions.md
#
# Other versions, each built in a directory of its own (the test tools in
# build/tools are shared):
#
#   NGINX=1.26       Debian's nginx source package of that version (1.22,
#                    the default, bookworm; 1.26 trixie; 1.30 sid), through
#                    scripts/debian-src.sh, into build/1.26/
#   OPENSSL=3.5      nginx built with Debian's OpenSSL 3.5 source (trixie)
#                    through --with-openssl=, not the system's libssl, into
#                    build/1.30-openssl-3.5/ with NGINX=1.30
#
#   make NGINX=1.30 OPENSSL=3.5 test      the suite against that nginx
#
# NGINX_SRC=/path/to/nginx builds against that tree instead of Debian's
# source package (NGINX= still names the build directory), and
# OPENSSL_SRC=/path/to/openssl with OPENSSL=VERSION against that OpenSSL.

SHELL      = /bin/sh
TOP       := $(abspath .)
BUILD      = $(TOP)/build
JOBS      ?= 2
CC        ?= cc

NGINX     ?= 1.22
OPENSSL   ?=

# never in a recipe's environment: nginx reads sockets to inherit from an
# environment variable NGINX (a binary upgrade), and would take "1.30"
unexport NGINX OPENSSL

# a tree given is used as it is; only Debian's are fetched
GIVEN     := $(if $(NGINX_SRC),nginx) $(if $(OPENSSL_SRC),openssl)

ifeq ($(NGINX)$(OPENSSL),1.22)
VBUILD     = $(BUILD)
NGINX_SRC ?= $(BUILD)/src/nginx
else
VBUILD     = $(BUILD)/$(NGINX)$(if $(OPENSSL),-openssl-$(OPENSSL))
NGINX_SRC ?= $(BUILD)/src/nginx-$(NGINX)
endif

ifneq ($(OPENSSL),)
OPENSSL_SRC ?= $(BUILD)/src/openssl-$(OPENSSL)
else ifneq ($(OPENSSL_SRC),)
$(error OPENSSL_SRC= needs OPENSSL=VERSION, which names the build directory)
endif

SRC       := $(abspath $(NGINX_SRC))
OSSL      := $(if $(OPENSSL),$(abspath $(OPENSSL_SRC)))
PREFIX     = $(VBUILD)/nginx

# OpenSSL built by nginx's make (auto/lib/openssl/make), installed in
# $(OSSL)/.openssl; its tests and manuals are not needed
OPENSSL_OPT ?= no-tests $(if $(filter 3.0%,$(OPENSSL)),,no-docs)
WITH_OPENSSL = $(if $(OSSL),--with-openssl=$(OSSL) \
                            --with-openssl-opt="$(OPENSSL_OPT)")

# nginx rebuilds that OpenSSL whenever a build directory's Makefile is
# newer than it: built once, it serves the static, dynamic and sanitized
# builds alike (they build it with the same options), so a new Makefile
# does not make it stale
OPENSSL_BUILT = $(OSSL)/.openssl/include/openssl/ssl.h
KEEP_OPENSSL = $(if $(OSSL),@if [ -f $(OPENSSL_BUILT) ]; then \
                   touch $(OPENSSL_BUILT); fi)

MODULE_SRCS = config ngx_dtls_module.c $(wildcard src/*.c src/*.h)

NGINX_CONFIGURE = --prefix=$(PREFIX) \
                  --with-compat --with-debug \
                  --without-http \
                  --with-stream --with-stream_ssl_module \
                  --with-cc-opt="$(CONF_CC_OPT)" \
                  --with-ld-opt="$(CONF_LD_OPT)" \
                  $(WITH_OPENSSL)
NGINX_CC_OPT ?= -O2 -g
NGINX_LD_OPT ?=

# what a build's configure differs by: how it takes the module, and, for
# the sanitizer build, the compiler and linker options
CONF_CC_OPT = $(NGINX_CC_OPT)
CONF_LD_OPT = $(NGINX_LD_OPT)
CONF_MODULE = --add-module=$(TOP)

TOOLS = $(BUILD)/tools/dtls_client $(BUILD)/tools/udp_echo \
        $(BUILD)/tools/udp_relay $(BUILD)/tools/dtls_load \
        $(BUILD)/tools/dtls_floor $(BUILD)/tools/freescan.so \
        $(BUILD)/tools/dtls_record_diff

# nginx and the module under AddressSanitizer and UBSan, for make test-asan;
# nginx core copies empty strings from NULL (ngx_pstrdup() at start-up),
# so that one check is off
ASAN_NGINX = $(VBUILD)/obj-asan/nginx
ASAN_CC_OPT = -O1 -g -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize=nonnull-attribute
ASAN_LOGS = $(VBUILD)/asan-logs

# fuzzing: clang and libFuzzer, see t/fuzz/README.md
FUZZ_SECONDS ?= 60

.PHONY: all deps source run test test-asan fuzz bench bench-psk \
        bench-memory bench-sessions floor tools interop-report clean \
        distclean

all: $(PREFIX)/sbin/nginx $(PREFIX)/modules/ngx_stream_dtls_module.so

deps:
	@sh scripts/deps.sh

source: deps
ifneq ($(filter nginx,$(GIVEN)),)
	@[ -f $(SRC)/configure ] && [ -f $(SRC)/src/core/nginx.c ] \
	    || { echo "NGINX_SRC=$(SRC) is not an nginx source tree"; exit 1; }
else
	@sh scripts/debian-src.sh nginx $(NGINX) $(SRC)
endif
ifneq ($(OSSL),)
ifneq ($(filter openssl,$(GIVEN)),)
	@[ -f $(OSSL)/Configure ] \
	    || { echo "OPENSSL_SRC=$(OSSL) is not an OpenSSL source tree"; \
	         exit 1; }
else
	@sh scripts/debian-src.sh openssl $(OPENSSL) $(OSSL)
endif
endif

# nginx configured in build/obj-static (the module compiled in),
# obj-dynamic (the module to load with load_module) and obj-asan (compiled
# in, under the sanitizers): one recipe, the differences above

$(VBUILD)/obj-dynamic/Makefile: CONF_MODULE = --add-dynamic-module=$(TOP)
$(VBUILD)/obj-asan/Makefile: CONF_CC_OPT = $(ASAN_CC_OPT)
$(VBUILD)/obj-asan/Makefile: CONF_LD_OPT = -fsanitize=address,undefined

$(VBUILD)/obj-%/Makefile: config | source
	mkdir -p $(VBUILD)
	cd $(SRC) && ./configure $(NGINX_CONFIGURE) \
	    --builddir=$(VBUILD)/obj-$* $(CONF_MODULE) \
	    > $(VBUILD)/configure-$*.log \
	    || { tail -n 15 $(VBUILD)/configure-$*.log; exit 1; }
	$(KEEP_OPENSSL)
	@echo "configured nginx ($*)"

# nginx with the module compiled in

$(PREFIX)/sbin/nginx: $(VBUILD)/obj-static/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(SRC) -f $(VBUILD)/obj-static/Makefile -j$(JOBS) binary
	mkdir -p $(PREFIX)/sbin $(PREFIX)/logs $(PREFIX)/conf
	cp $(VBUILD)/obj-static/nginx $@.new && mv -f $@.new $@

# the same nginx without it, and the module to load with load_module

$(PREFIX)/modules/ngx_stream_dtls_module.so: $(VBUILD)/obj-dynamic/Makefile \
                                             $(MODULE_SRCS)
	$(MAKE) -C $(SRC) -f $(VBUILD)/obj-dynamic/Makefile -j$(JOBS) \
	    binary modules
	mkdir -p $(PREFIX)/sbin $(PREFIX)/modules
	cp $(VBUILD)/obj-dynamic/nginx $(PREFIX)/sbin/nginx-compat.new
	mv -f $(PREFIX)/sbin/nginx-compat.new $(PREFIX)/sbin/nginx-compat
	cp $(VBUILD)/obj-dynamic/ngx_stream_dtls_module.so $@.new && mv -f $@.new $@

# the same nginx with the module, under the sanitizers

$(ASAN_NGINX): $(VBUILD)/obj-asan/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(SRC) -f $(VBUILD)/obj-asan/Makefile -j$(JOBS) binary

# test tools

tools: $(TOOLS)

$(BUILD)/tools/%: t/tools/%.c t/tools/addr.h t/tools/dtls.h t/tools/opt.h
	@mkdir -p $(BUILD)/tools
	$(CC) -O2 -g -Wall -Wextra -o $@ $< -lssl -lcrypto -lpthread

# the benchmark's tools (bench/dtls_load.c, bench/dtls_floor.c), beside
# them in build/tools, with the test tools' headers

$(BUILD)/tools/%: bench/%.c t/tools/addr.h t/tools/dtls.h t/tools/dgram.h \
                   t/tools/opt.h
	@mkdir -p $(BUILD)/tools
	$(CC) -O2 -g -Wall -Wextra -I t/tools -o $@ $< -lssl -lcrypto -lpthread

# the module's record layer against OpenSSL's DTLS (t/dtls_record.t): its
# source file alone, against the headers of the configured nginx (as
# t/fuzz/Makefile compiles module files), with nothing of nginx linked in

RECORD_INCS = -I $(BUILD)/obj-static -I $(SRC)/src/core -I $(SRC)/src/event \
              -I $(SRC)/src/event/modules -I $(SRC)/src/os/unix -I $(TOP)/src

$(BUILD)/tools/dtls_record_diff: t/tools/dtls_record_diff.c t/tools/dtls.h \
                                 t/tools/dgram.h \
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
	@DTLS_NGINX=$(PREFIX)/sbin/nginx sh scripts/run.sh

# independent clients the tests use, and capsh (nginx without CAP_BPF)
TEST_PACKAGES = openssl gnutls-bin libcoap3-bin golang-go \
                golang-github-pion-dtls.v2-dev \
                golang-github-pires-go-proxyproto-dev libcap2-bin

# the suite runs this build's nginx (TEST_NGINX_BINARY, unless set), and
# dtls_dynamic.t its nginx-compat and module (TEST_NGINX_PREFIX)

test: all tools
	@sh scripts/deps.sh --optional $(TEST_PACKAGES)
	@sh scripts/interop-deps.sh pion node pion_proxy pp_go pp_node mbedtls
	TEST_NGINX_BINARY=$${TEST_NGINX_BINARY:-$(PREFIX)/sbin/nginx} \
	TEST_NGINX_PREFIX=$(PREFIX) \
	    prove -I t/lib t/

# the whole suite against the sanitized nginx; any report fails it

test-asan: all tools $(ASAN_NGINX)
	@sh scripts/deps.sh --optional $(TEST_PACKAGES)
	@sh scripts/interop-deps.sh pion node pion_proxy pp_go pp_node mbedtls
	rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	TEST_NGINX_BINARY=$(ASAN_NGINX) TEST_NGINX_ASAN=1 \
	TEST_NGINX_PREFIX=$(PREFIX) \
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
	perl bench/psk.pl

# handshakes with identities from a cdb of 1,000,000 and a text file of
# 10 in one run, nginx -t's time and the processes' memory
# (bench/psk.pl; BENCH_SECONDS, BENCH_REPEAT)

bench-psk: all tools
	@sh scripts/deps.sh procps util-linux tinycdb
	perl bench/psk.pl

# memory per idle session: the module's records, OpenSSL's, sessions kept
# only in dtls_session_zone; their echo rates, side by side (bench/
# sessions.pl; BENCH_SESSIONS, BENCH_ZONE_SESSIONS, BENCH_ECHO_SECONDS,
# BENCH_ECHO_REPEAT): docs/benchmarks-sessions.md.  BASELINE=COMMIT adds
# the echo rate of the module of that commit, built in
# build/baseline-COMMIT (f1affbe: the last before its own record layer)

BASELINE ?=
BASELINE_NGINX = $(BUILD)/baseline-$(BASELINE)/build/nginx/sbin/nginx

bench-sessions: all tools $(if $(BASELINE),$(BASELINE_NGINX))
	@sh scripts/deps.sh procps
	$(if $(BASELINE),BENCH_BASELINE=$(BASELINE_NGINX) \
	    BENCH_BASELINE_NAME=$(BASELINE)) perl bench/sessions.pl

$(BUILD)/baseline-%/build/nginx/sbin/nginx: | source
	rm -rf $(BUILD)/baseline-$*
	mkdir -p $(BUILD)/baseline-$*
	git archive $* | tar -x -C $(BUILD)/baseline-$*
	$(MAKE) -C $(BUILD)/baseline-$* NGINX_SRC=$(SRC) $@

# memory per idle session with OPENSSL (3.5) against the system's OpenSSL,
# the same nginx (NGINX, 1.30 by default here) and one run for both:
# docs/benchmarks-openssl.md (bench/memory.pl; BENCH_SESSIONS,
# BENCH_REPEAT).  make bench-memory NGINX=... OPENSSL=... for others.

MEMORY_NGINX   = $(if $(filter command line,$(origin NGINX)),$(NGINX),1.30)
MEMORY_OPENSSL = $(or $(OPENSSL),3.5)
MEMORY_SYSTEM  = $(BUILD)/$(MEMORY_NGINX)
MEMORY_BUILT   = $(BUILD)/$(MEMORY_NGINX)-openssl-$(MEMORY_OPENSSL)

bench-memory: tools
	@sh scripts/deps.sh $(BENCH_PACKAGES)
	$(MAKE) NGINX=$(MEMORY_NGINX) OPENSSL= all
	$(MAKE) NGINX=$(MEMORY_NGINX) OPENSSL=$(MEMORY_OPENSSL) all floor
	perl bench/memory.pl \
	    "system OpenSSL=$(MEMORY_SYSTEM)/nginx/sbin/nginx=$(BUILD)/tools/dtls_floor" \
	    "OpenSSL $(MEMORY_OPENSSL)=$(MEMORY_BUILT)/nginx/sbin/nginx=$(MEMORY_BUILT)/tools/dtls_floor"

# dtls_floor linked against this build's OpenSSL (OPENSSL=), not the
# system's, for bench-memory

floor: $(PREFIX)/sbin/nginx
	@[ -n "$(OSSL)" ] || { echo "floor: needs OPENSSL="; exit 1; }
	@mkdir -p $(VBUILD)/tools
	$(CC) -O2 -g -Wall -Wextra -I$(OSSL)/.openssl/include -I t/tools \
	    -o $(VBUILD)/tools/dtls_floor bench/dtls_floor.c \
	    $(OSSL)/.openssl/lib/libssl.a $(OSSL)/.openssl/lib/libcrypto.a \
	    -lpthread -ldl

# docs/interop.md from the interop tests' last run

interop-report:
	perl scripts/interop-report.pl > docs/interop.md

clean:
	rm -rf $(VBUILD)/obj-static $(VBUILD)/obj-dynamic $(VBUILD)/obj-asan \
	       $(BUILD)/obj-fuzz $(BUILD)/fuzz $(BUILD)/tools $(PREFIX)

distclean:
	rm -rf $(BUILD)

# make deb, and its package for make test (Debian 12)
include packaging/deb.mk
