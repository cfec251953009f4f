# make deb: libnginx-mod-stream-dtls_<version>_<arch>.deb, the module built
# as a Debian nginx module against the installed nginx-dev (Debian 12);
# make test then installs it and runs it under Debian's nginx (t/dtls_deb.t)
# when it is root on Debian 12.  Included by the Makefile.

DEB_VERSION ?= 0.1.0+git$(shell git -C $(TOP) log -1 --format=%cd \
                 --date=format:%Y%m%d 2>/dev/null || echo 0)
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null)
DEB_FILE     = $(BUILD)/libnginx-mod-stream-dtls_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_ON       = $(shell [ "$$(id -u)" = 0 ] \
                 && grep -qs '^12\.' /etc/debian_version && echo yes)

.PHONY: deb deb-if-debian deb-clean

deb: $(DEB_FILE)

$(DEB_FILE): $(MODULE_SRCS) $(wildcard packaging/debian/* \
                                       packaging/debian/*/*) \
             scripts/deb.sh
	@sh scripts/deb.sh $(TOP) $(BUILD) $(DEB_VERSION)

# for make test: the package when t/dtls_deb.t can use it, else nothing
deb-if-debian:
	@if [ "$(DEB_ON)" = yes ]; then $(MAKE) --no-print-directory deb; \
	else echo "deb: not root on Debian 12, t/dtls_deb.t will skip"; fi

test: deb-if-debian

deb-clean:
	rm -rf $(BUILD)/deb $(BUILD)/libnginx-mod-stream-dtls_*.deb

clean: deb-clean
