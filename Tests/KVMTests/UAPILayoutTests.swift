import Foundation
import Testing

/// CKVM is written out by hand for arm64; this compiles it next to the arm64 kernel UAPI headers
/// (Debian's linux-libc-dev, fetched by Scripts/fetch-arm64-assets) for an aarch64 target and has
/// the compiler check every size, offset and number realm-run uses.
///
/// The headers' location comes from `REALM_RUN_ARM64_UAPI_INCLUDE`. Without it the test is skipped,
/// unless `REALM_RUN_REQUIRE_ASSETS=1` (as the project's test command sets), where it fails.
@Suite struct UAPILayoutTests {
  static let environment = ProcessInfo.processInfo.environment
  static let includeDirectory = environment["REALM_RUN_ARM64_UAPI_INCLUDE"]
  static let required = environment["REALM_RUN_REQUIRE_ASSETS"] == "1"

  @Test(.enabled(if: includeDirectory != nil || required, "REALM_RUN_ARM64_UAPI_INCLUDE is not set"))
  func ckvmMatchesTheArm64KernelHeaders() throws {
    let include = try #require(Self.includeDirectory, "REALM_RUN_ARM64_UAPI_INCLUDE must name the arm64 UAPI headers")
    #expect(FileManager.default.fileExists(atPath: include + "/asm/kvm.h"), "no arm64 asm/kvm.h under \(include)")
    let result = try compile(Self.checks, include: include)
    #expect(result.status == 0, "\(result.output)")
  }

  /// The checker must catch a wrong value: the same compile with one deliberate mismatch fails.
  @Test(.enabled(if: includeDirectory != nil || required, "REALM_RUN_ARM64_UAPI_INCLUDE is not set"))
  func aMismatchIsCaught() throws {
    let include = try #require(Self.includeDirectory)
    let result = try compile(Self.checks + "\nSAME_VALUE(CKVM_RUN, KVM_RUN + 1);\n", include: include)
    #expect(result.status != 0)
  }

  func compile(_ source: String, include: String) throws -> (status: Int32, output: String) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uapi-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("check.cpp")
    try source.write(to: file, atomically: true, encoding: .utf8)
    let ckvm = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("../../Sources/CKVM/include").standardized.path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    // C++ so that CKVM's `static const` numbers are constant expressions for static_assert.
    process.arguments = [
      "clang++", "-target", "aarch64-linux-gnu", "-x", "c++", "-std=c++17", "-fsyntax-only",
      "-ffreestanding", "-nostdlibinc", "-I", include, "-I", ckvm, file.path,
    ]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
  }

  static let checks = """
    #include <linux/kvm.h>
    #include "ckvm.h"
    #define SAME_SIZE(a, b) static_assert(sizeof(struct a) == sizeof(struct b), "size of " #a)
    #define SAME_OFFSET(a, fa, b, fb) static_assert(offsetof(struct a, fa) == offsetof(struct b, fb), #a "." #fa)
    #define SAME_VALUE(a, b) static_assert((unsigned long long)(a) == (unsigned long long)(b), #a " != " #b)

    SAME_SIZE(ckvm_userspace_memory_region, kvm_userspace_memory_region);
    SAME_OFFSET(ckvm_userspace_memory_region, slot, kvm_userspace_memory_region, slot);
    SAME_OFFSET(ckvm_userspace_memory_region, flags, kvm_userspace_memory_region, flags);
    SAME_OFFSET(ckvm_userspace_memory_region, guest_phys_addr, kvm_userspace_memory_region, guest_phys_addr);
    SAME_OFFSET(ckvm_userspace_memory_region, memory_size, kvm_userspace_memory_region, memory_size);
    SAME_OFFSET(ckvm_userspace_memory_region, userspace_addr, kvm_userspace_memory_region, userspace_addr);

    SAME_SIZE(ckvm_userspace_memory_region2, kvm_userspace_memory_region2);
    SAME_OFFSET(ckvm_userspace_memory_region2, slot, kvm_userspace_memory_region2, slot);
    SAME_OFFSET(ckvm_userspace_memory_region2, flags, kvm_userspace_memory_region2, flags);
    SAME_OFFSET(ckvm_userspace_memory_region2, guest_phys_addr, kvm_userspace_memory_region2, guest_phys_addr);
    SAME_OFFSET(ckvm_userspace_memory_region2, memory_size, kvm_userspace_memory_region2, memory_size);
    SAME_OFFSET(ckvm_userspace_memory_region2, userspace_addr, kvm_userspace_memory_region2, userspace_addr);
    SAME_OFFSET(ckvm_userspace_memory_region2, guest_memfd_offset, kvm_userspace_memory_region2, guest_memfd_offset);
    SAME_OFFSET(ckvm_userspace_memory_region2, guest_memfd, kvm_userspace_memory_region2, guest_memfd);

    SAME_SIZE(ckvm_create_guest_memfd, kvm_create_guest_memfd);
    SAME_OFFSET(ckvm_create_guest_memfd, size, kvm_create_guest_memfd, size);
    SAME_OFFSET(ckvm_create_guest_memfd, flags, kvm_create_guest_memfd, flags);
    SAME_SIZE(ckvm_memory_attributes, kvm_memory_attributes);
    SAME_OFFSET(ckvm_memory_attributes, address, kvm_memory_attributes, address);
    SAME_OFFSET(ckvm_memory_attributes, size, kvm_memory_attributes, size);
    SAME_OFFSET(ckvm_memory_attributes, attributes, kvm_memory_attributes, attributes);
    SAME_OFFSET(ckvm_memory_attributes, flags, kvm_memory_attributes, flags);

    SAME_SIZE(ckvm_one_reg, kvm_one_reg);
    SAME_OFFSET(ckvm_one_reg, id, kvm_one_reg, id);
    SAME_OFFSET(ckvm_one_reg, addr, kvm_one_reg, addr);
    SAME_SIZE(ckvm_vcpu_init, kvm_vcpu_init);
    SAME_OFFSET(ckvm_vcpu_init, features, kvm_vcpu_init, features);
    SAME_SIZE(ckvm_device_attr, kvm_device_attr);
    SAME_OFFSET(ckvm_device_attr, group, kvm_device_attr, group);
    SAME_OFFSET(ckvm_device_attr, attr, kvm_device_attr, attr);
    SAME_OFFSET(ckvm_device_attr, addr, kvm_device_attr, addr);
    SAME_SIZE(ckvm_create_device, kvm_create_device);
    SAME_OFFSET(ckvm_create_device, fd, kvm_create_device, fd);
    SAME_SIZE(ckvm_enable_cap, kvm_enable_cap);
    SAME_OFFSET(ckvm_enable_cap, args, kvm_enable_cap, args);
    SAME_SIZE(ckvm_irq_level, kvm_irq_level);
    SAME_SIZE(ckvm_ioeventfd, kvm_ioeventfd);
    SAME_OFFSET(ckvm_ioeventfd, addr, kvm_ioeventfd, addr);
    SAME_OFFSET(ckvm_ioeventfd, len, kvm_ioeventfd, len);
    SAME_OFFSET(ckvm_ioeventfd, fd, kvm_ioeventfd, fd);
    SAME_OFFSET(ckvm_ioeventfd, flags, kvm_ioeventfd, flags);
    SAME_VALUE(CKVM_IOEVENTFD_FLAG_DEASSIGN, KVM_IOEVENTFD_FLAG_DEASSIGN);
    SAME_SIZE(ckvm_irqfd, kvm_irqfd);
    SAME_OFFSET(ckvm_irqfd, fd, kvm_irqfd, fd);
    SAME_OFFSET(ckvm_irqfd, gsi, kvm_irqfd, gsi);
    SAME_OFFSET(ckvm_irqfd, flags, kvm_irqfd, flags);
    SAME_OFFSET(ckvm_irqfd, resamplefd, kvm_irqfd, resamplefd);
    SAME_VALUE(CKVM_IRQFD_FLAG_DEASSIGN, KVM_IRQFD_FLAG_DEASSIGN);
    SAME_VALUE(CKVM_IRQFD_FLAG_RESAMPLE, KVM_IRQFD_FLAG_RESAMPLE);
    SAME_SIZE(ckvm_vcpu_events, kvm_vcpu_events);
    SAME_OFFSET(ckvm_vcpu_events, ext_dabt_pending, kvm_vcpu_events, exception.ext_dabt_pending);
    SAME_OFFSET(ckvm_vcpu_events, serror_esr, kvm_vcpu_events, exception.serror_esr);

    SAME_OFFSET(ckvm_run, immediate_exit, kvm_run, immediate_exit);
    SAME_OFFSET(ckvm_run, exit_reason, kvm_run, exit_reason);
    SAME_OFFSET(ckvm_run, mmio.phys_addr, kvm_run, mmio.phys_addr);
    SAME_OFFSET(ckvm_run, mmio.data, kvm_run, mmio.data);
    SAME_OFFSET(ckvm_run, mmio.len, kvm_run, mmio.len);
    SAME_OFFSET(ckvm_run, mmio.is_write, kvm_run, mmio.is_write);
    SAME_OFFSET(ckvm_run, hypercall.nr, kvm_run, hypercall.nr);
    SAME_OFFSET(ckvm_run, hypercall.args, kvm_run, hypercall.args);
    SAME_OFFSET(ckvm_run, hypercall.flags, kvm_run, hypercall.flags);
    SAME_OFFSET(ckvm_run, system_event.type, kvm_run, system_event.type);
    SAME_OFFSET(ckvm_run, system_event.ndata, kvm_run, system_event.ndata);
    SAME_OFFSET(ckvm_run, system_event.data, kvm_run, system_event.data);
    SAME_OFFSET(ckvm_run, memory_fault.flags, kvm_run, memory_fault.flags);
    SAME_OFFSET(ckvm_run, memory_fault.gpa, kvm_run, memory_fault.gpa);
    SAME_OFFSET(ckvm_run, memory_fault.size, kvm_run, memory_fault.size);
    SAME_OFFSET(ckvm_run, internal.suberror, kvm_run, internal.suberror);

    SAME_VALUE(CKVM_API_VERSION, KVM_API_VERSION);
    SAME_VALUE(CKVM_GET_API_VERSION, KVM_GET_API_VERSION);
    SAME_VALUE(CKVM_CREATE_VM, KVM_CREATE_VM);
    SAME_VALUE(CKVM_CHECK_EXTENSION, KVM_CHECK_EXTENSION);
    SAME_VALUE(CKVM_GET_VCPU_MMAP_SIZE, KVM_GET_VCPU_MMAP_SIZE);
    SAME_VALUE(CKVM_CREATE_VCPU, KVM_CREATE_VCPU);
    SAME_VALUE(CKVM_SET_USER_MEMORY_REGION, KVM_SET_USER_MEMORY_REGION);
    SAME_VALUE(CKVM_SET_USER_MEMORY_REGION2, KVM_SET_USER_MEMORY_REGION2);
    SAME_VALUE(CKVM_IRQ_LINE, KVM_IRQ_LINE);
    SAME_VALUE(CKVM_IOEVENTFD, KVM_IOEVENTFD);
    SAME_VALUE(CKVM_IRQFD, KVM_IRQFD);
    SAME_VALUE(CKVM_RUN, KVM_RUN);
    SAME_VALUE(CKVM_SET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS);
    SAME_VALUE(CKVM_ENABLE_CAP, KVM_ENABLE_CAP);
    SAME_VALUE(CKVM_GET_ONE_REG, KVM_GET_ONE_REG);
    SAME_VALUE(CKVM_SET_ONE_REG, KVM_SET_ONE_REG);
    SAME_VALUE(CKVM_ARM_VCPU_INIT, KVM_ARM_VCPU_INIT);
    SAME_VALUE(CKVM_ARM_PREFERRED_TARGET, KVM_ARM_PREFERRED_TARGET);
    SAME_VALUE(CKVM_ARM_VCPU_FINALIZE, KVM_ARM_VCPU_FINALIZE);
    SAME_VALUE(CKVM_SET_MEMORY_ATTRIBUTES, KVM_SET_MEMORY_ATTRIBUTES);
    SAME_VALUE(CKVM_CREATE_GUEST_MEMFD, KVM_CREATE_GUEST_MEMFD);
    SAME_VALUE(CKVM_CREATE_DEVICE, KVM_CREATE_DEVICE);
    SAME_VALUE(CKVM_SET_DEVICE_ATTR, KVM_SET_DEVICE_ATTR);

    SAME_VALUE(CKVM_CAP_IRQCHIP, KVM_CAP_IRQCHIP);
    SAME_VALUE(CKVM_CAP_USER_MEMORY, KVM_CAP_USER_MEMORY);
    SAME_VALUE(CKVM_CAP_ONE_REG, KVM_CAP_ONE_REG);
    SAME_VALUE(CKVM_CAP_ARM_PSCI_0_2, KVM_CAP_ARM_PSCI_0_2);
    SAME_VALUE(CKVM_CAP_ARM_VM_IPA_SIZE, KVM_CAP_ARM_VM_IPA_SIZE);
    SAME_VALUE(CKVM_CAP_ARM_INJECT_EXT_DABT, KVM_CAP_ARM_INJECT_EXT_DABT);
    SAME_VALUE(CKVM_CAP_USER_MEMORY2, KVM_CAP_USER_MEMORY2);
    SAME_VALUE(CKVM_CAP_MEMORY_FAULT_INFO, KVM_CAP_MEMORY_FAULT_INFO);
    SAME_VALUE(CKVM_CAP_MEMORY_ATTRIBUTES, KVM_CAP_MEMORY_ATTRIBUTES);
    SAME_VALUE(CKVM_CAP_GUEST_MEMFD, KVM_CAP_GUEST_MEMFD);
    SAME_VALUE(CKVM_CAP_VM_TYPES, KVM_CAP_VM_TYPES);
    SAME_VALUE(CKVM_CAP_ARM_SVE, KVM_CAP_ARM_SVE);
    SAME_VALUE(CKVM_CAP_ARM_PMU_V3, KVM_CAP_ARM_PMU_V3);
    SAME_VALUE(CKVM_MEM_GUEST_MEMFD, KVM_MEM_GUEST_MEMFD);
    SAME_VALUE(CKVM_MEMORY_ATTRIBUTE_PRIVATE, KVM_MEMORY_ATTRIBUTE_PRIVATE);
    SAME_VALUE(CKVM_MEMORY_EXIT_FLAG_PRIVATE, KVM_MEMORY_EXIT_FLAG_PRIVATE);
    SAME_VALUE(CKVM_HYPERCALL_EXIT_SMC, KVM_HYPERCALL_EXIT_SMC);

    SAME_VALUE(CKVM_EXIT_UNKNOWN, KVM_EXIT_UNKNOWN);
    SAME_VALUE(CKVM_EXIT_HYPERCALL, KVM_EXIT_HYPERCALL);
    SAME_VALUE(CKVM_EXIT_MMIO, KVM_EXIT_MMIO);
    SAME_VALUE(CKVM_EXIT_SHUTDOWN, KVM_EXIT_SHUTDOWN);
    SAME_VALUE(CKVM_EXIT_FAIL_ENTRY, KVM_EXIT_FAIL_ENTRY);
    SAME_VALUE(CKVM_EXIT_INTR, KVM_EXIT_INTR);
    SAME_VALUE(CKVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTERNAL_ERROR);
    SAME_VALUE(CKVM_EXIT_SYSTEM_EVENT, KVM_EXIT_SYSTEM_EVENT);
    SAME_VALUE(CKVM_EXIT_MEMORY_FAULT, KVM_EXIT_MEMORY_FAULT);
    SAME_VALUE(CKVM_SYSTEM_EVENT_SHUTDOWN, KVM_SYSTEM_EVENT_SHUTDOWN);
    SAME_VALUE(CKVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_RESET);
    SAME_VALUE(CKVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_CRASH);

    SAME_VALUE(CKVM_ARM_VCPU_POWER_OFF, KVM_ARM_VCPU_POWER_OFF);
    SAME_VALUE(CKVM_ARM_VCPU_PSCI_0_2, KVM_ARM_VCPU_PSCI_0_2);
    SAME_VALUE(CKVM_ARM_VCPU_PMU_V3, KVM_ARM_VCPU_PMU_V3);
    SAME_VALUE(CKVM_ARM_VCPU_SVE, KVM_ARM_VCPU_SVE);
    SAME_VALUE(CKVM_CORE_REG_PC, KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pc));
    SAME_VALUE(CKVM_CORE_REG_SP, KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.sp));
    SAME_VALUE(CKVM_CORE_REG_PSTATE, KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pstate));
    SAME_VALUE(CKVM_REG_ARM64_CORE(0), KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.regs[0]));
    SAME_VALUE(CKVM_REG_ARM64_CORE(30 * 8), KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.regs[30]));
    SAME_VALUE(CKVM_REG_ARM64_SVE_VLS, KVM_REG_ARM64_SVE_VLS);
    SAME_VALUE(CKVM_REG_PMCR_EL0, ARM64_SYS_REG(3, 3, 9, 12, 0));
    SAME_VALUE(CKVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_CTRL);
    SAME_VALUE(CKVM_ARM_VCPU_PMU_V3_IRQ, KVM_ARM_VCPU_PMU_V3_IRQ);
    SAME_VALUE(CKVM_ARM_VCPU_PMU_V3_INIT, KVM_ARM_VCPU_PMU_V3_INIT);
    SAME_VALUE(CKVM_ARM_IRQ_TYPE_SHIFT, KVM_ARM_IRQ_TYPE_SHIFT);
    SAME_VALUE(CKVM_ARM_IRQ_VCPU_SHIFT, KVM_ARM_IRQ_VCPU_SHIFT);
    SAME_VALUE(CKVM_ARM_IRQ_TYPE_SPI, KVM_ARM_IRQ_TYPE_SPI);
    SAME_VALUE(CKVM_ARM_IRQ_TYPE_PPI, KVM_ARM_IRQ_TYPE_PPI);

    SAME_VALUE(CKVM_DEV_TYPE_ARM_VGIC_V3, KVM_DEV_TYPE_ARM_VGIC_V3);
    SAME_VALUE(CKVM_DEV_TYPE_ARM_VGIC_ITS, KVM_DEV_TYPE_ARM_VGIC_ITS);
    SAME_VALUE(CKVM_DEV_ARM_VGIC_GRP_ADDR, KVM_DEV_ARM_VGIC_GRP_ADDR);
    SAME_VALUE(CKVM_DEV_ARM_VGIC_GRP_NR_IRQS, KVM_DEV_ARM_VGIC_GRP_NR_IRQS);
    SAME_VALUE(CKVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_GRP_CTRL);
    SAME_VALUE(CKVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_VGIC_CTRL_INIT);
    SAME_VALUE(CKVM_VGIC_V3_ADDR_TYPE_DIST, KVM_VGIC_V3_ADDR_TYPE_DIST);
    SAME_VALUE(CKVM_VGIC_V3_ADDR_TYPE_REDIST, KVM_VGIC_V3_ADDR_TYPE_REDIST);
    SAME_VALUE(CKVM_VGIC_V3_ADDR_TYPE_ITS, KVM_VGIC_ITS_ADDR_TYPE);
    """
}
