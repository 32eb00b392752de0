// Identity-mapped stage-1 translation (4 KiB granule, 48-bit VA, EL1).
// Early boot maps [0, 1 TiB) as Device and the 1 GiB around the image as Normal, so Swift
// runs with caches on from its first instruction; Swift then refines the map from the DT.
#include "FirmwareSupport.h"

#define TABLES 48
static uint64_t tables[TABLES][512] __attribute__((aligned(4096)));
static int tables_used;

#define DESC_VALID    1ull
#define DESC_TABLE    3ull
#define DESC_PAGE     3ull
#define DESC_AF       (1ull << 10)
#define DESC_SH_INNER (3ull << 8)
#define DESC_PXN      (1ull << 53)
#define DESC_UXN      (1ull << 54)
#define ATTR_DEVICE   (0ull << 2)
#define ATTR_NORMAL   (1ull << 2)
#define ADDR_MASK     0x0000fffffffff000ull

static uint64_t *new_table(void) {
  if (tables_used >= TABLES) return 0;
  uint64_t *t = tables[tables_used++];
  for (int i = 0; i < 512; i++) t[i] = 0;
  return t;
}

static uint64_t leaf_attrs(int normal) {
  return DESC_AF | (normal ? (ATTR_NORMAL | DESC_SH_INNER) : (ATTR_DEVICE | DESC_PXN | DESC_UXN));
}

static void sync_tables(void) {
  __asm__ volatile("dsb ishst; tlbi vmalle1; dsb ish; isb" ::: "memory");
}

static uint64_t *root;

// Maps one naturally aligned chunk of size (1 << shift) at `level` (0..3), splitting blocks.
static int map_chunk(uint64_t *table, int level, uint64_t va, uint64_t end, int normal) {
  int shift = 39 - 9 * level;
  uint64_t span = 1ull << shift;
  while (va < end) {
    uint64_t idx = (va >> shift) & 511;
    uint64_t chunk_end = (va & ~(span - 1)) + span;
    uint64_t stop = chunk_end < end ? chunk_end : end;
    uint64_t *e = &table[idx];
    int whole = (va & (span - 1)) == 0 && stop == chunk_end;
    if (whole && level >= 1) {
      uint64_t want = (va & ADDR_MASK) | leaf_attrs(normal) | (level == 3 ? DESC_PAGE : DESC_VALID);
      if (*e != want) { *e = want; }
    } else {
      uint64_t *next;
      if ((*e & 3) == DESC_TABLE && level < 3) {
        next = (uint64_t *)(uintptr_t)(*e & ADDR_MASK);
      } else {
        next = new_table();
        if (!next) return -1;
        if (*e & DESC_VALID) {  // split a block: the children inherit its attributes
          uint64_t base = *e & ADDR_MASK & ~(span - 1);
          uint64_t attrs = *e & ~ADDR_MASK & ~3ull;
          uint64_t child = span >> 9;
          for (int i = 0; i < 512; i++)
            next[i] = (base + i * child) | attrs | (level + 1 == 3 ? DESC_PAGE : DESC_VALID);
        }
        __asm__ volatile("dsb ishst" ::: "memory");
        *e = (uint64_t)(uintptr_t)next | DESC_TABLE;
      }
      if (map_chunk(next, level + 1, va, stop, normal)) return -1;
    }
    va = stop;
  }
  return 0;
}

int fw_mmu_map(uint64_t base, uint64_t size, int normal) {
  uint64_t start = base & ~0xfffull;
  uint64_t end = (base + size + 0xfff) & ~0xfffull;
  if (end <= start || end > (1ull << 48)) return -1;
  int r = map_chunk(root, 0, start, end, normal);
  sync_tables();
  return r;
}

void fw_mmu_enable_early(uint64_t image_start, uint64_t image_end) {
  (void)image_end;
  root = new_table();
  map_chunk(root, 0, 0, 1ull << 40, 0);
  uint64_t gib = image_start & ~((1ull << 30) - 1);
  map_chunk(root, 0, gib, gib + (1ull << 30), 1);
  uint64_t mmfr0;
  __asm__ volatile("mrs %0, id_aa64mmfr0_el1" : "=r"(mmfr0));
  uint64_t ips = mmfr0 & 7; if (ips > 5) ips = 5;
  uint64_t tcr = 16 | (1ull << 8) | (1ull << 10) | (3ull << 12) | (1ull << 23) | (ips << 32) | (1ull << 37);
  uint64_t mair = 0x00 | (0xffull << 8) | (0x44ull << 16);
  __asm__ volatile(
      "msr mair_el1, %0\n msr tcr_el1, %1\n msr ttbr0_el1, %2\n isb\n"
      "tlbi vmalle1\n dsb ish\n isb\n"
      "mrs x9, sctlr_el1\n orr x9, x9, #1\n orr x9, x9, #4\n orr x9, x9, #(1 << 12)\n"
      "bic x9, x9, #2\n msr sctlr_el1, x9\n isb\n"
      : : "r"(mair), "r"(tcr), "r"((uint64_t)(uintptr_t)root) : "x9", "memory");
}

void fw_touch_pages(uint64_t base, uint64_t size) {
  if (size == 0) return;
  for (uint64_t a = base; a < base + size; a = (a | 0xfff) + 1) *(volatile uint8_t *)(uintptr_t)a = 0;
}

void fw_dcache_clean_inval(uint64_t base, uint64_t size) {
  uint64_t ctr; __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
  uint64_t line = 4ull << ((ctr >> 16) & 0xf);
  for (uint64_t a = base & ~(line - 1); a < base + size; a += line)
    __asm__ volatile("dc civac, %0" : : "r"(a) : "memory");
  __asm__ volatile("dsb sy; isb" ::: "memory");
}
