// Freestanding libc pieces the Swift runtime and compiler-generated code need.
#include <stdint.h>
#include <stddef.h>

void *memset(void *dst, int c, size_t n) {
  uint8_t *d = dst;
  uint64_t v = (uint8_t)c; v |= v << 8; v |= v << 16; v |= v << 32;
  while (n && ((uintptr_t)d & 7)) { *d++ = (uint8_t)c; n--; }
  while (n >= 8) { *(uint64_t *)d = v; d += 8; n -= 8; }
  while (n--) *d++ = (uint8_t)c;
  return dst;
}

void *memcpy(void *dst, const void *src, size_t n) {
  uint8_t *d = dst; const uint8_t *s = src;
  if ((((uintptr_t)d ^ (uintptr_t)s) & 7) == 0) {
    while (n && ((uintptr_t)d & 7)) { *d++ = *s++; n--; }
    while (n >= 32) {
      uint64_t a = ((const uint64_t *)s)[0], b = ((const uint64_t *)s)[1];
      uint64_t c = ((const uint64_t *)s)[2], e = ((const uint64_t *)s)[3];
      ((uint64_t *)d)[0] = a; ((uint64_t *)d)[1] = b; ((uint64_t *)d)[2] = c; ((uint64_t *)d)[3] = e;
      d += 32; s += 32; n -= 32;
    }
    while (n >= 8) { *(uint64_t *)d = *(const uint64_t *)s; d += 8; s += 8; n -= 8; }
  }
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  uint8_t *d = dst; const uint8_t *s = src;
  if (d == s || n == 0) return dst;
  if (d < s || d >= s + n) return memcpy(dst, src, n);
  while (n--) d[n] = s[n];
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const uint8_t *x = a, *y = b;
  for (size_t i = 0; i < n; i++) if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

// Bump allocator over the linker-reserved heap. free() is a no-op: the firmware runs once.
extern uint8_t __heap_start[], __heap_end[];
static uintptr_t heap_next;

int posix_memalign(void **out, size_t align, size_t size) {
  if (align < 16) align = 16;
  if (!heap_next) heap_next = (uintptr_t)__heap_start;
  uintptr_t p = (heap_next + align - 1) & ~(uintptr_t)(align - 1);
  if (p + size < p || p + size > (uintptr_t)__heap_end) { *out = 0; return 12; }
  heap_next = p + size;
  *out = (void *)p;
  return 0;
}
void *malloc(size_t size) { void *p; return posix_memalign(&p, 16, size) ? 0 : p; }
void free(void *p) { (void)p; }
void *fw_alloc_pages(size_t size) { void *p; return posix_memalign(&p, 4096, (size + 4095) & ~(size_t)4095) ? 0 : p; }
uint64_t fw_image_end(void) { return (uint64_t)(uintptr_t)__heap_end; }
extern uint8_t __image_start[];
uint64_t fw_image_start(void) { return (uint64_t)(uintptr_t)__image_start; }

// Needed only if Hashable containers are used; deterministic is fine for a firmware.
void arc4random_buf(void *buf, size_t n) {
  static uint64_t s = 0x9e3779b97f4a7c15ull; uint8_t *b = buf;
  for (size_t i = 0; i < n; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; b[i] = (uint8_t)s; }
}
extern uint8_t __bss_end[];
uint64_t fw_image_bss_end(void) { return (uint64_t)(uintptr_t)__bss_end; }
