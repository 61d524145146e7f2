# blobstore - top-level build (GNU make, pkg-config).
#
#   make            library, tool, examples            (build/)
#   make check      every test, then again under ASan+UBSan
#   make demo       the main job on a fresh image
#   make install    PREFIX=/usr/local DESTDIR=
#   make BUILD=debug|asan ...   other variants (build-debug/, build-asan/)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/blobstore

VERSION := 0.2.0
SOMAJOR := 0

CC ?= cc
PKG_CONFIG ?= pkg-config

BUILD ?= release
ifeq ($(BUILD),release)
O := build
OPT := -O2 -g
else ifeq ($(BUILD),debug)
O := build-debug
OPT := -O0 -g3
else ifeq ($(BUILD),asan)
O := build-asan
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
$(error BUILD must be release, debug or asan)
endif

# Four libraries: the core (libtasn1, libcrypto), and the NBD backend, the
# libtpms bridge and the RBD backend, each in a library of its own so that a
# program that uses none needs neither libnbd nor libtpms nor librbd.
pkg_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pkg_libs = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)
CORE_LIBS = $(call pkg_libs,libtasn1 libcrypto) -lpthread
NBD_LIBS = $(call pkg_libs,libnbd)
TPM_LIBS = $(call pkg_libs,libtpms)
# The RBD backend loads librbd and librados at its first use (dlopen; see
# blobstore/storage/rbd.c): building needs only their headers (librbd-dev).
RBD_LIBS = -ldl -lpthread
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS ?=
override CFLAGS += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fPIC
LDFLAGS ?=
override LDFLAGS += $(filter -fsanitize=%,$(OPT))

# Include paths by target (tools/check-layers.py checks the includes too):
# the library's layers see the public headers and each other's headers;
# the device layer (nvram/), the tools and the examples see only the
# public headers.
LIB_INC := -Iinclude -Iblobstore
PUB_INC := -Iinclude

NBD_SRC := blobstore/storage/nbd.c
RBD_SRC := blobstore/storage/rbd.c
TPM_SRC := nvram/tpm.c
CORE_SRC := $(filter-out $(NBD_SRC) $(RBD_SRC),$(wildcard blobstore/*/*.c)) \
            $(filter-out $(TPM_SRC),$(wildcard nvram/*.c))
# Objects under obj/: $(O)/blobstore is the tool, not a folder.
CORE_OBJ := $(CORE_SRC:%.c=$(O)/obj/%.o) $(O)/gen/asn1tab.o $(O)/gen/asn1text.o
NBD_OBJ := $(NBD_SRC:%.c=$(O)/obj/%.o)
RBD_OBJ := $(RBD_SRC:%.c=$(O)/obj/%.o)
TPM_OBJ := $(TPM_SRC:%.c=$(O)/obj/%.o)
TOOL_SRC := $(wildcard tools/blobstore/*.c)
TOOL_OBJ := $(TOOL_SRC:%.c=$(O)/obj/%.o)
HEADERS := $(wildcard include/blobstore/*.h include/blobstore/sys/*.h)

STATIC := $(O)/libblobstore.a
NBD_STATIC := $(O)/libblobstore-nbd.a
RBD_STATIC := $(O)/libblobstore-rbd.a
TPM_STATIC := $(O)/libblobstore-tpm.a
SHARED := $(O)/libblobstore.so.$(VERSION)
NBD_SHARED := $(O)/libblobstore-nbd.so.$(VERSION)
RBD_SHARED := $(O)/libblobstore-rbd.so.$(VERSION)
TPM_SHARED := $(O)/libblobstore-tpm.so.$(VERSION)
TOOL := $(O)/blobstore
# What programs link: the static libraries and what they need.
ALL_STATIC := $(TPM_STATIC) $(NBD_STATIC) $(RBD_STATIC) $(STATIC)
ALL_LIBS = $(TPM_LIBS) $(NBD_LIBS) $(RBD_LIBS) $(CORE_LIBS)

.PHONY: all deps check check-unit check-integration check-interop check-asan check-layers demo \
        install clean bench fuzz crashtest
all: $(STATIC) $(NBD_STATIC) $(TPM_STATIC) $(SHARED) $(NBD_SHARED) $(TPM_SHARED) $(TOOL)
all: $(RBD_STATIC) $(RBD_SHARED)

# Missing Debian packages: installed when root, else the exact apt-get line.
deps:
	@tools/deps.sh $(DEPS_FOR)

$(O)/obj/blobstore/%.o: blobstore/%.c $(HEADERS) $(wildcard blobstore/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_INC) $(call pkg_cflags,libtasn1 libcrypto) -c -o $@ $<

$(NBD_OBJ): override CFLAGS += $(call pkg_cflags,libnbd)

$(O)/obj/nvram/%.o: nvram/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PUB_INC) $(call pkg_cflags,libcrypto) -c -o $@ $<

$(TPM_OBJ): override CFLAGS += $(call pkg_cflags,libtpms)

$(O)/obj/tools/%.o: tools/%.c $(HEADERS) $(wildcard tools/blobstore/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PUB_INC) -c -o $@ $<

$(O)/gen/asn1tab.c: blobstore/blobstore.asn
	@mkdir -p $(dir $@)
	asn1Parser -c $<
	asn1Parser -n bs__asn1_tab -o $@ $<

$(O)/gen/asn1text.c: blobstore/blobstore.asn
	@mkdir -p $(dir $@)
	{ echo '/* generated from $< */'; echo 'const char bs__asn1_text[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; echo ';'; } > $@

$(O)/gen/%.o: $(O)/gen/%.c
	$(CC) $(filter-out -Wmissing-prototypes -Wshadow,$(CFLAGS)) $(call pkg_cflags,libtasn1) \
	  -Wno-missing-prototypes -c -o $@ $<

$(STATIC): $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(NBD_STATIC): $(NBD_OBJ)
	rm -f $@
	ar rcs $@ $^

$(RBD_STATIC): $(RBD_OBJ)
	rm -f $@
	ar rcs $@ $^

$(TPM_STATIC): $(TPM_OBJ)
	rm -f $@
	ar rcs $@ $^

# NAME, objects, version script, what it links.
define shared_lib
$(O)/lib$(1).so.$(VERSION): $(2) blobstore/lib$(1).map $(if $(filter blobstore,$(1)),,$(SHARED))
	$$(CC) -shared -Wl,-soname,lib$(1).so.$(SOMAJOR) -Wl,--version-script=blobstore/lib$(1).map \
	  -Wl,--no-undefined $$(LDFLAGS) -o $$@ $(2) $(3)
	ln -sf lib$(1).so.$(VERSION) $(O)/lib$(1).so.$(SOMAJOR)
	ln -sf lib$(1).so.$(SOMAJOR) $(O)/lib$(1).so
endef
$(eval $(call shared_lib,blobstore,$(CORE_OBJ),$$(CORE_LIBS)))
# The NBD library carries its own copy of the block-aligned I/O it uses.
$(eval $(call shared_lib,blobstore-nbd,$(NBD_OBJ) $(O)/obj/blobstore/storage/blockio.o,$(SHARED) $$(NBD_LIBS)))
$(eval $(call shared_lib,blobstore-tpm,$(TPM_OBJ),$(SHARED) $$(TPM_LIBS)))
$(eval $(call shared_lib,blobstore-rbd,$(RBD_OBJ),$(SHARED) $$(RBD_LIBS)))

$(TOOL): $(TOOL_OBJ) $(NBD_STATIC) $(RBD_STATIC) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(NBD_STATIC) $(RBD_STATIC) $(STATIC) $(NBD_LIBS) $(RBD_LIBS) \
	  $(CORE_LIBS)

include examples/examples.mk
include tests/tests.mk
include bench/bench.mk
include fuzz/fuzz.mk
include tests/reliability.mk
include tests/vtpm-peer.mk

# The build runs in a sub-make, after deps: with -j, a prerequisite list
# would build while packages are still being installed.
demo: DEPS_FOR := demo
demo: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh $(O)

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/blobstore/sys $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(LIBDIR)/pkgconfig \
	  $(DESTDIR)$(DATADIR)
	for l in blobstore blobstore-nbd blobstore-tpm blobstore-rbd; do \
	  install -m 644 $(O)/lib$$l.a $(DESTDIR)$(LIBDIR)/ && \
	  install -m 755 $(O)/lib$$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/ && \
	  ln -sf lib$$l.so.$(VERSION) $(DESTDIR)$(LIBDIR)/lib$$l.so.$(SOMAJOR) && \
	  ln -sf lib$$l.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/lib$$l.so && \
	  sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' $$l.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/$$l.pc || exit 1; \
	done
	install -m 644 include/blobstore/*.h $(DESTDIR)$(INCLUDEDIR)/blobstore/
	install -m 644 include/blobstore/sys/*.h $(DESTDIR)$(INCLUDEDIR)/blobstore/sys/
	install -m 755 $(TOOL) $(VTPM) $(DESTDIR)$(BINDIR)/
	install -m 644 docs/blobstore.1 $(DESTDIR)$(MANDIR)/man1/
	if [ -f docs/blobstore-vtpm.8 ]; then install -m 644 docs/blobstore-vtpm.8 $(DESTDIR)$(MANDIR)/man8/; fi
	install -m 644 blobstore/blobstore.asn $(DESTDIR)$(DATADIR)/

clean:
	rm -rf build build-debug build-asan build-fuzz
