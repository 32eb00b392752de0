// Touches MMIO that no device owns, in the shared half of a Realm, and reports what happened on the
// UART: PROBE_ABORTED when realm-run answered with an external abort (what it must do), or
// PROBE_NO_ABORT. Then PSCI SYSTEM_OFF. Build with -DSHARED_BIT=<bit>: 32 for a Realm of up to
// 2 GiB of RAM (33 IPA bits), 0 for a normal VM.
#ifndef SHARED_BIT
#define SHARED_BIT 32
#endif
  .text
  .global _start
_start:
  adr x0, vectors
  msr vbar_el1, x0
  isb
  movz x20, #0x0100, lsl #16    // the UART, 0x0100_0000
#if SHARED_BIT
  movz x9, #1
  lsl x9, x9, #SHARED_BIT
  orr x20, x20, x9              // ... through the unprotected alias
#endif
  adr x2, started
  bl puts
  movz x3, #0x0A00, lsl #16     // 0x0A00_0000: no device there
#if SHARED_BIT
  orr x3, x3, x9
#endif
  ldr w4, [x3]
  adr x2, no_abort
  bl puts
  b off

aborted:
  adr x2, got_abort
  bl puts
off:
  movz x0, #0x0008
  movk x0, #0x8400, lsl #16     // PSCI_SYSTEM_OFF
  smc #0
  b .

  .balign 2048
vectors:                        // synchronous exceptions, from EL1 with SP_EL0 or SP_EL1
  b aborted
  .balign 0x200
  b aborted

#include "uart.inc"

  .balign 8
started:   .asciz "PROBE_START\n"
no_abort:  .asciz "PROBE_NO_ABORT\n"
got_abort: .asciz "PROBE_ABORTED\n"
