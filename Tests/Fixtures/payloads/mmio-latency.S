// Times MMIO exits: 1000 byte writes to the UART's scratch register (each one a trip out to the
// VMM and back), timed with the virtual counter, then PSCI SYSTEM_OFF. Prints
//
//   MMIO_EXITS=1000 TICKS=<hex> FREQ=<hex>
//
// In a Realm the UART is reached through the unprotected alias, whose bit comes from
// RSI_REALM_CONFIG; in a normal VM that call fails (SMCCC NOT_SUPPORTED) and no alias is used.
// Loaded with realm-run --firmware; built by Scripts/build-payloads.
  .text
  .global _start
_start:
  adr x19, config
  movz x0, #0x0196
  movk x0, #0xC400, lsl #16     // RSI_REALM_CONFIG
  mov x1, x19
  smc #0
  mov x9, #0
  cbnz x0, 1f                   // not a Realm: no alias
  ldr x10, [x19]                // ipa_width
  sub x10, x10, #1
  mov x9, #1
  lsl x9, x9, x10
1:
  movz x20, #0x0100, lsl #16    // the UART, 0x0100_0000
  orr x20, x20, x9

  isb
  mrs x25, cntvct_el0
  mov x26, #1000
2:
  strb wzr, [x20, #7]           // the scratch register
  subs x26, x26, #1
  b.ne 2b
  isb
  mrs x27, cntvct_el0

  adr x2, exits_label
  bl puts
  sub x0, x27, x25
  bl puthex64
  adr x2, freq_label
  bl puts
  mrs x0, cntfrq_el0
  bl puthex64
  mov w0, #'\n'
  strb w0, [x20]

  movz x0, #0x0008
  movk x0, #0x8400, lsl #16     // PSCI_SYSTEM_OFF
  smc #0
  b .

#include "uart.inc"

  .balign 8
exits_label:  .asciz "MMIO_EXITS=1000 TICKS="
freq_label:   .asciz " FREQ="
  .balign 4096
config:       .skip 4096        // RsiRealmConfig
