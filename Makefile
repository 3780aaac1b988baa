# mbta-stream build.
#
#   make                         build/mbta-stream
#   make SANITIZE=address,undefined   instrumented copy in build/sanitize/
#   make test                    unit + integration suite (brings services up/down)
#   make unit                    unit tests only, no servers
#   make fuzz                    libFuzzer targets (clang) in build/fuzz/
#   make demo                    the main job end to end
#   make bench                   benchmarks, printed
#   make format                  clang-format every source file
#
# Every src/<module>/*.c except src/cmd/main.c goes into one static library
# that the binary, the unit tests and the fuzz targets link.

CC       ?= cc
PKGS     := rdkafka libcurl libpq jansson libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wno-format-nonliteral -Wpointer-arith -Wcast-qual -Wvla
ifeq ($(CI),true)
WARN     += -Werror
endif
ifdef WERROR
WARN     += -Werror
endif

CPPFLAGS += -D_GNU_SOURCE -Isrc
# CFLAGS is the user's (optimisation, sanitizers); ALL_CFLAGS adds ours.
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -pipe $(WARN) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS   += $(PKG_LIBS) -lm -lpthread
# The binary's allocator: jemalloc (MALLOC=libc for glibc's). librdkafka
# allocates ~7 small blocks per message and frees them in bursts of a
# batch's delivery reports, a pattern glibc's malloc serves slowly
# (consolidations, unsorted-bin walks): jemalloc takes ~15% off produce's CPU
# (bench/README.md). Not with sanitizers, which bring their own.
MALLOC   ?= jemalloc
ifdef SANITIZE
MALLOC   := libc
endif
ifeq ($(MALLOC),jemalloc)
MALLOC_LIBS := $(shell pkg-config --libs jemalloc 2>/dev/null)
endif

ifdef SANITIZE
BUILD    ?= build/sanitize
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=$(SANITIZE)
else
BUILD    ?= build
endif

SRCS     := $(filter-out src/cmd/main.c,$(wildcard src/*/*.c))
OBJS     := $(SRCS:%.c=$(BUILD)/obj/%.o)
GEN_SRCS := $(BUILD)/gen/sql_migrations.c
GEN_OBJS := $(GEN_SRCS:%.c=%.o)
LIB      := $(BUILD)/libmbta.a
BIN      := $(BUILD)/mbta-stream

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
ITEST_SRCS := $(wildcard tests/integration/itest_*.c)
ITEST_BINS := $(ITEST_SRCS:tests/integration/%.c=$(BUILD)/tests/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
SQL_FILES  := $(sort $(wildcard sql/*.sql))

.PHONY: all deps unit test fuzz demo bench format clean check-format tests
all: $(BIN) tests

tests: $(UNIT_BINS) $(ITEST_BINS) $(BENCH_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/sql_migrations.c: $(SQL_FILES) scripts/embed-sql
	@mkdir -p $(dir $@)
	sh scripts/embed-sql $(SQL_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(OBJS) $(GEN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(BUILD)/obj/src/cmd/main.o $(LIB)
	$(if $(filter jemalloc,$(MALLOC)),$(if $(MALLOC_LIBS),,$(error jemalloc not found by pkg-config: run scripts/deps, or make MALLOC=libc)))
	$(CC) $(LDFLAGS) -o $@ $^ $(MALLOC_LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/t.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/tests/itest_%: tests/integration/itest_%.c tests/unit/t.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Fuzz targets: the whole library rebuilt with clang and coverage, one binary
# per fuzz/fuzz_*.c.
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)
fuzz: $(FUZZ_BINS)
build/fuzz/libmbta.a: $(SRCS) $(SQL_FILES)
	$(MAKE) --no-print-directory BUILD=build/fuzz/lib CC=clang \
	    CFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
	    LDFLAGS="-fsanitize=address,undefined" build/fuzz/lib/libmbta.a
	cp build/fuzz/lib/libmbta.a $@
build/fuzz/%: fuzz/%.c build/fuzz/libmbta.a
	clang $(CPPFLAGS) -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) \
	    -o $@ $< build/fuzz/libmbta.a $(LDLIBS)

deps:
	sh scripts/deps

unit: $(BIN) tests
	sh tests/run --unit

test: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory fuzz
	sh tests/run

demo: deps
	$(MAKE) --no-print-directory all
	sh scripts/demo

bench: deps
	$(MAKE) --no-print-directory all
	sh bench/run

FORMAT_FILES := $(wildcard src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h \
                 tests/integration/*.c fuzz/*.c bench/*.c)
format:
	clang-format -i $(FORMAT_FILES)
check-format:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(BUILD)/obj/src/cmd/main.d
