// C and assembly services the Swift firmware imports (module FirmwareSupport).
#ifndef FIRMWARE_SUPPORT_H
#define FIRMWARE_SUPPORT_H
#include <stdint.h>
#include <stddef.h>

/// Result registers x0..x3 of an SMCCC call.
typedef struct { uint64_t x0, x1, x2, x3, x4, x5, x6, x7, x8; } fw_smc_result;

/// SMCCC call through SMC (x0 = function id, x1..x7 = arguments). Returns x0..x8.
static inline __attribute__((always_inline)) fw_smc_result fw_smc(uint64_t a0, uint64_t a1, uint64_t a2,
    uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7) {
  register uint64_t r0 __asm__("x0") = a0; register uint64_t r1 __asm__("x1") = a1;
  register uint64_t r2 __asm__("x2") = a2; register uint64_t r3 __asm__("x3") = a3;
  register uint64_t r4 __asm__("x4") = a4; register uint64_t r5 __asm__("x5") = a5;
  register uint64_t r6 __asm__("x6") = a6; register uint64_t r7 __asm__("x7") = a7;
  register uint64_t r8 __asm__("x8") = 0;
  __asm__ volatile("smc #0" : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6),
                   "+r"(r7), "+r"(r8) : : "memory", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17");
  fw_smc_result r = {r0, r1, r2, r3, r4, r5, r6, r7, r8};
  return r;
}

/// SMCCC call through HVC.
static inline __attribute__((always_inline)) fw_smc_result fw_hvc(uint64_t a0, uint64_t a1, uint64_t a2,
    uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7) {
  register uint64_t r0 __asm__("x0") = a0; register uint64_t r1 __asm__("x1") = a1;
  register uint64_t r2 __asm__("x2") = a2; register uint64_t r3 __asm__("x3") = a3;
  register uint64_t r4 __asm__("x4") = a4; register uint64_t r5 __asm__("x5") = a5;
  register uint64_t r6 __asm__("x6") = a6; register uint64_t r7 __asm__("x7") = a7;
  register uint64_t r8 __asm__("x8") = 0;
  __asm__ volatile("hvc #0" : "+r"(r0), "+r"(r1), "+r"(r2), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6),
                   "+r"(r7), "+r"(r8) : : "memory", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17");
  fw_smc_result r = {r0, r1, r2, r3, r4, r5, r6, r7, r8};
  return r;
}

static inline __attribute__((always_inline)) uint64_t fw_read_id_aa64pfr0(void) {
  uint64_t v; __asm__ volatile("mrs %0, id_aa64pfr0_el1" : "=r"(v)); return v;
}
static inline __attribute__((always_inline)) uint64_t fw_read_id_aa64isar0(void) {
  uint64_t v; __asm__ volatile("mrs %0, id_aa64isar0_el1" : "=r"(v)); return v;
}
/// SHA-256's compression of `blocks` 64-byte blocks at `data` into `state` (h0..h7), with the
/// ARMv8 SHA-256 instructions and the 64 round constants `k` (FirmwareCore's table): only where
/// ID_AA64ISAR0_EL1.SHA2 is non-zero (sha256_simd.c).
void fw_sha256_blocks(uint32_t *state, const void *data, size_t blocks, const uint32_t *k);
/// RNDR (FEAT_RNG): a 64-bit random number into *out; 0 when the hardware had none to give.
static inline __attribute__((always_inline)) int fw_rndr(uint64_t *out) {
  uint64_t v, ok;
  __asm__ volatile("mrs %0, s3_3_c2_c4_0\n\tcset %1, ne" : "=r"(v), "=r"(ok) : : "cc");
  *out = v;
  return (int)ok;
}
static inline __attribute__((always_inline)) uint64_t fw_read_cntvct(void) {
  uint64_t v; __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v) : : "memory"); return v;
}
static inline __attribute__((always_inline)) uint64_t fw_read_cntfrq(void) {
  uint64_t v; __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(v)); return v;
}
static inline __attribute__((always_inline)) void fw_dsb(void) { __asm__ volatile("dsb sy" ::: "memory"); }

static inline __attribute__((always_inline)) uint8_t fw_mmio_read8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline __attribute__((always_inline)) uint16_t fw_mmio_read16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline __attribute__((always_inline)) uint32_t fw_mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline __attribute__((always_inline)) void fw_mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline __attribute__((always_inline)) void fw_mmio_write16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline __attribute__((always_inline)) void fw_mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }

/// Counter value read by start.S at entry.
extern uint64_t fw_boot_counter;

/// Console routing used by putchar and the exception reporter (set by Swift once the DT is read).
/// kind: 0 = none, 1 = PL011, 2 = 8250 (reg_shift: register stride log2, io_width 1 or 4).
void fw_console_set(uint32_t kind, uint64_t base, uint32_t reg_shift, uint32_t io_width);
/// PSCI conduit for SYSTEM_OFF/RESET and the exception path: 0 = HVC, 1 = SMC.
void fw_psci_set_conduit(uint32_t use_smc);
void fw_puts(const char *s);
void fw_put_hex(uint64_t v);

/// realm-run's boot-status page ("realm-run,boot-status"): a 32-bit failure code at 0x0, a byte
/// port at 0x4 taking the reason one character at a time. realm-run exits 4 with the reason when
/// the guest powers off after a failure code was written.
enum {
  FW_BOOT_STATUS_CODE = 0x0,
  FW_BOOT_STATUS_REASON = 0x4,
  /// The firmware refused to boot: the disk, partition table, file system, boot entry or kernel.
  FW_BOOT_FAILED = 1,
  /// An exception reached the firmware's vectors.
  FW_BOOT_EXCEPTION = 2,
};
/// Where the page is (with any Realm shared bit already applied; 0: the machine has none).
void fw_boot_status_set(uint64_t base);
/// Appends one character to the reason (nothing without a page).
void fw_boot_status_putc(uint8_t c);
/// Writes the failure code (nothing without a page); the reason goes first.
void fw_boot_status_fail(uint32_t code);
__attribute__((noreturn)) void fw_system_off(void);
__attribute__((noreturn)) void fw_system_reset(void);

/// Identity map: marks [base, base+size) Normal write-back (RAM) or Device; 1 GiB/2 MiB blocks.
/// Returns 0 on success, -1 when out of page-table memory.
int fw_mmu_map(uint64_t base, uint64_t size, int normal);
/// Cleans and invalidates [base, base+size) to the point of coherency.
void fw_dcache_clean_inval(uint64_t base, uint64_t size);
/// Writes one zero byte in each 4 KiB page of [base, base+size): the first touch of a Realm's
/// protected page is a stage 2 fault the host serves, and timing it apart shows that cost.
void fw_touch_pages(uint64_t base, uint64_t size);
/// Bump-allocates page-aligned memory from the firmware heap (never freed). NULL when exhausted.
void *fw_alloc_pages(size_t size);
/// End of the firmware image including stack and heap.
uint64_t fw_image_end(void);
uint64_t fw_image_start(void);
/// End of the image's code, data and BSS (the stack and the heap follow).
uint64_t fw_image_bss_end(void);

/// MMU off, caches off, jump to a Linux arm64 Image (x0 = dtb, x1..x3 = 0).
__attribute__((noreturn)) void fw_enter_kernel(uint64_t entry, uint64_t dtb);

#endif
