// Early console (PL011 or 8250), PSCI power control and the exception reporter.
#include "FirmwareSupport.h"

static uint32_t console_kind, console_shift, console_width;
static uint64_t console_base;
static uint32_t psci_smc;

void fw_console_set(uint32_t kind, uint64_t base, uint32_t reg_shift, uint32_t io_width) {
  console_kind = kind; console_base = base; console_shift = reg_shift; console_width = io_width;
  if (kind == 2) {  // 8250: 8N1, FIFO on, no interrupts; keep the divisor the VMM set.
    uint64_t lcr = base + (3u << reg_shift), ier = base + (1u << reg_shift), fcr = base + (2u << reg_shift);
    if (io_width == 4) { fw_mmio_write32(lcr, 3); fw_mmio_write32(ier, 0); fw_mmio_write32(fcr, 7); }
    else { fw_mmio_write8(lcr, 3); fw_mmio_write8(ier, 0); fw_mmio_write8(fcr, 7); }
  }
}

void fw_psci_set_conduit(uint32_t use_smc) { psci_smc = use_smc; }

static uint64_t boot_status_base;

void fw_boot_status_set(uint64_t base) { boot_status_base = base; }
void fw_boot_status_putc(uint8_t c) {
  if (boot_status_base) fw_mmio_write8(boot_status_base + FW_BOOT_STATUS_REASON, c);
}
void fw_boot_status_fail(uint32_t code) {
  if (boot_status_base) fw_mmio_write32(boot_status_base + FW_BOOT_STATUS_CODE, code);
}
static void boot_status_puts(const char *s) { while (*s) fw_boot_status_putc((uint8_t)*s++); }
static void boot_status_put_hex(uint64_t v) {
  boot_status_puts("0x");
  int i = 60;
  while (i > 0 && ((v >> i) & 0xf) == 0) i -= 4;  // short: the reason is kept to 200 characters
  for (; i >= 0; i -= 4) fw_boot_status_putc((uint8_t)"0123456789abcdef"[(v >> i) & 0xf]);
}

static void uart_put(uint8_t c) {
  if (console_kind == 1) {
    for (int i = 0; i < 100000 && (fw_mmio_read32(console_base + 0x18) & (1u << 5)); i++) {}
    fw_mmio_write32(console_base, c);
  } else if (console_kind == 2) {
    uint64_t lsr = console_base + (5u << console_shift);
    for (int i = 0; i < 100000; i++) {
      uint32_t s = console_width == 4 ? fw_mmio_read32(lsr) : fw_mmio_read8(lsr);
      if (s & 0x20) break;
    }
    if (console_width == 4) fw_mmio_write32(console_base, c); else fw_mmio_write8(console_base, c);
  }
}

int putchar(int c) {
  if (c == '\n') uart_put('\r');
  uart_put((uint8_t)c);
  return c;
}

void fw_puts(const char *s) { while (*s) putchar(*s++); }

void fw_put_hex(uint64_t v) {
  fw_puts("0x");
  for (int i = 60; i >= 0; i -= 4) putchar("0123456789abcdef"[(v >> i) & 0xf]);
}

static fw_smc_result psci(uint64_t fid) {
  return psci_smc ? fw_smc(fid, 0, 0, 0, 0, 0, 0, 0) : fw_hvc(fid, 0, 0, 0, 0, 0, 0, 0);
}
void fw_system_off(void) { psci(0x84000008); for (;;) __asm__ volatile("wfi"); }
void fw_system_reset(void) { psci(0x84000009); for (;;) __asm__ volatile("wfi"); }

static const char *const vector_names[16] = {
  "sync (EL1t)", "irq (EL1t)", "fiq (EL1t)", "serror (EL1t)",
  "sync (EL1h)", "irq (EL1h)", "fiq (EL1h)", "serror (EL1h)",
  "sync (EL0/64)", "irq (EL0/64)", "fiq (EL0/64)", "serror (EL0/64)",
  "sync (EL0/32)", "irq (EL0/32)", "fiq (EL0/32)", "serror (EL0/32)",
};

/// Called by the vectors in start.S: prints the syndrome, reports it on the boot-status page
/// and powers off.
void fw_exception(uint64_t kind, uint64_t *frame) {
  static int reporting;
  if (reporting++) fw_system_off();  // a fault while reporting one (the console or page itself)
  uint64_t esr, elr, far;
  __asm__ volatile("mrs %0, esr_el1; mrs %1, elr_el1; mrs %2, far_el1" : "=r"(esr), "=r"(elr), "=r"(far));
  boot_status_puts("exception "); boot_status_puts(vector_names[kind & 15]);
  boot_status_puts(", ESR "); boot_status_put_hex(esr);
  boot_status_puts(", ELR "); boot_status_put_hex(elr);
  boot_status_puts(", FAR "); boot_status_put_hex(far);
  boot_status_puts(", image base "); boot_status_put_hex(fw_image_start());
  fw_boot_status_fail(FW_BOOT_EXCEPTION);
  fw_puts("\nrealm-fw: EXCEPTION "); fw_puts(vector_names[kind & 15]);
  fw_puts("\n  ESR "); fw_put_hex(esr);
  fw_puts(" (EC "); fw_put_hex(esr >> 26); fw_puts(")");
  fw_puts("\n  ELR "); fw_put_hex(elr);
  fw_puts("\n  FAR "); fw_put_hex(far);
  fw_puts("\n  LR  "); fw_put_hex(frame[30]);
  fw_puts("\n  image base "); fw_put_hex(fw_image_start());
  fw_puts("\nrealm-fw: powering off\n");
  fw_system_off();
}
uint64_t fw_boot_counter;
