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

VERSION := 0.1.0
SOMAJOR := 0

CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := libtasn1 libcrypto libtpms libnbd

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

PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS ?=
override CFLAGS += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -fPIC -Iinclude -Iblobstore -Invram $(PKG_CFLAGS)
LDFLAGS ?=
override LDFLAGS += $(filter -fsanitize=%,$(OPT))
LIBS = $(PKG_LIBS) -lpthread

LIB_SRC := $(wildcard blobstore/*/*.c) $(wildcard nvram/*.c)
# Objects under obj/: $(O)/blobstore is the tool, not a folder.
LIB_OBJ := $(LIB_SRC:%.c=$(O)/obj/%.o) $(O)/gen/asn1tab.o $(O)/gen/asn1text.o
TOOL_SRC := $(wildcard tools/blobstore/*.c)
TOOL_OBJ := $(TOOL_SRC:%.c=$(O)/obj/%.o)

STATIC := $(O)/libblobstore.a
SHARED := $(O)/libblobstore.so.$(VERSION)
SONAME := libblobstore.so.$(SOMAJOR)
TOOL := $(O)/blobstore

.PHONY: all deps check check-unit check-integration check-interop check-asan demo install clean \
        bench fuzz crashtest
all: $(STATIC) $(SHARED) $(TOOL)

# Missing Debian packages: installed when root, else the exact apt-get line.
deps:
	@tools/deps.sh $(DEPS_FOR)

$(O)/obj/%.o: %.c $(wildcard include/*.h blobstore/*.h blobstore/*/*.h nvram/*.h tools/blobstore/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(O)/gen/asn1tab.c: blobstore/blobstore.asn
	@mkdir -p $(dir $@)
	asn1Parser -c $<
	asn1Parser -n bs__asn1_tab -o $@ $<

$(O)/gen/asn1text.c: blobstore/blobstore.asn
	@mkdir -p $(dir $@)
	{ echo '/* generated from $< */'; echo 'const char bs__asn1_text[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; echo ';'; } > $@

$(O)/gen/%.o: $(O)/gen/%.c
	$(CC) $(filter-out -Wmissing-prototypes -Wshadow,$(CFLAGS)) -Wno-missing-prototypes -c -o $@ $<

$(STATIC): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJ) blobstore/libblobstore.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=blobstore/libblobstore.map $(LDFLAGS) -o $@ $(LIB_OBJ) $(LIBS)
	ln -sf libblobstore.so.$(VERSION) $(O)/$(SONAME)
	ln -sf $(SONAME) $(O)/libblobstore.so

$(TOOL): $(TOOL_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(STATIC) $(LIBS)

include examples/examples.mk
include tests/tests.mk
include bench/bench.mk
include fuzz/fuzz.mk
include tests/reliability.mk

# The build runs in a sub-make, after deps: with -j, a prerequisite list
# would build while packages are still being installed.
demo: DEPS_FOR := demo
demo: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh $(O)

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(DATADIR)
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libblobstore.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libblobstore.so
	install -m 644 include/*.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(TOOL) $(VTPM) $(DESTDIR)$(BINDIR)/
	install -m 644 docs/blobstore.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 blobstore/blobstore.asn $(DESTDIR)$(DATADIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	  -e 's|@VERSION@|$(VERSION)|' blobstore.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/blobstore.pc

clean:
	rm -rf build build-debug build-asan build-fuzz
