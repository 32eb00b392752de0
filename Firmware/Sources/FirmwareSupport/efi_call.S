// Starting and leaving EFI images (efi.h): StartImage calls the entry point through
// fw_efi_start_image, which saves the callee-saved state (and x18, which UEFI reserves for the
// platform) so that Exit, called at any depth inside the image, can unwind to it with
// fw_efi_exit_to, as a longjmp would.

    .arch   armv8-a+fp+simd             // d8-d15 are callee-saved (C is built general-regs-only)
    .text
    .globl fw_efi_start_image
// efi_status fw_efi_start_image(uint64_t entry, efi_handle handle, efi_system_table *table, uint64_t *context)
fw_efi_start_image:
    stp     x19, x20, [x3, #0]
    stp     x21, x22, [x3, #16]
    stp     x23, x24, [x3, #32]
    stp     x25, x26, [x3, #48]
    stp     x27, x28, [x3, #64]
    stp     x29, x30, [x3, #80]
    mov     x9, sp
    str     x9, [x3, #96]
    stp     d8, d9, [x3, #104]
    stp     d10, d11, [x3, #120]
    stp     d12, d13, [x3, #136]
    stp     d14, d15, [x3, #152]
    str     x18, [x3, #168]
    mov     x19, x3                     // callee-saved: still the context when the entry returns
    mov     x9, x0
    mov     x0, x1
    mov     x1, x2
    blr     x9
    mov     x1, x0
    mov     x0, x19
    // fall through: an entry point's return unwinds the same way as Exit

    .globl fw_efi_exit_to
// void fw_efi_exit_to(uint64_t *context, efi_status status)
fw_efi_exit_to:
    ldp     x19, x20, [x0, #0]
    ldp     x21, x22, [x0, #16]
    ldp     x23, x24, [x0, #32]
    ldp     x25, x26, [x0, #48]
    ldp     x27, x28, [x0, #64]
    ldp     x29, x30, [x0, #80]
    ldr     x9, [x0, #96]
    mov     sp, x9
    ldp     d8, d9, [x0, #104]
    ldp     d10, d11, [x0, #120]
    ldp     d12, d13, [x0, #136]
    ldp     d14, d15, [x0, #152]
    ldr     x18, [x0, #168]
    mov     x0, x1
    ret

    .globl fw_sync_icache
// void fw_sync_icache(uint64_t base, uint64_t size): clean D to PoU, invalidate I, by line.
fw_sync_icache:
    add     x1, x1, x0
    mrs     x3, ctr_el0
    ubfx    x4, x3, #16, #4             // DminLine: log2(words)
    mov     x5, #4
    lsl     x4, x5, x4
    sub     x6, x4, #1
    bic     x2, x0, x6
1:  dc      cvau, x2
    add     x2, x2, x4
    cmp     x2, x1
    b.lo    1b
    dsb     ish
    and     x4, x3, #0xf                // IminLine
    lsl     x4, x5, x4
    sub     x6, x4, #1
    bic     x2, x0, x6
2:  ic      ivau, x2
    add     x2, x2, x4
    cmp     x2, x1
    b.lo    2b
    dsb     ish
    isb
    ret

// void fw_efi_relocate(uint64_t shift): SetVirtualAddressMap's last step. Re-applies the image's
// R_AARCH64_RELATIVE relocations (start.S applied them at start-up with delta = load - link) with
// delta + shift, so that code running `shift` bytes away reaches its data. A word whose value is
// no longer what start-up wrote (a pointer the firmware set or already converted, a field it
// cleared) is not the relocation's to rewrite. Registers only: no relocated word is loaded.
    .globl fw_efi_relocate
fw_efi_relocate:
    adrp    x1, __image_start
    add     x1, x1, :lo12:__image_start
    ldr     x2, =__link_base            // absolute symbol: no relocation on this literal
    sub     x1, x1, x2                  // start-up delta
    add     x2, x1, x0                  // new delta
    adrp    x3, __rela_start
    add     x3, x3, :lo12:__rela_start
    adrp    x4, __rela_end
    add     x4, x4, :lo12:__rela_end
1:  cmp     x3, x4
    b.hs    2f
    ldp     x5, x6, [x3], #24           // r_offset, r_info
    ldur    x7, [x3, #-8]               // r_addend
    cmp     w6, #1027                   // R_AARCH64_RELATIVE
    b.ne    1b
    add     x5, x5, x1                  // where the word is
    add     x8, x7, x1                  // what start-up wrote there
    ldr     x9, [x5]
    cmp     x9, x8
    b.ne    1b
    add     x8, x7, x2
    str     x8, [x5]
    b       1b
2:  ret
