import ArgumentParser
import CKVM
import KVM

/// `realm-run host-info`: what this host's KVM offers, for people setting up a CCA host.
struct HostInfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "host-info",
    abstract: "Show what this host's KVM offers: IPA size, CCA support and its UAPI generation, guest_memfd.")

  @Option(help: ArgumentHelp("The KVM device.", valueName: "path"))
  var device: String = "/dev/kvm"

  func run() throws {
    let system: KVMSystem
    do {
      system = try KVMSystem(path: device)
    } catch {
      RealmRun.report(error.description)
      throw ExitStatus.vmmError
    }
    func yesNo(_ capability: some BinaryInteger) -> String { system.checkExtension(UInt(capability)) > 0 ? "yes" : "no" }
    #if arch(arm64)
    let architecture = "arm64"
    #else
    let architecture = "not arm64 (realm-run needs an arm64 host)"
    #endif
    let cca = CCASeries.probe(system).map(\.description) ?? "none (no KVM_CAP_ARM_RMI or KVM_CAP_ARM_RME)"
    print("""
      kvm:              \(device), API version \(CKVM_API_VERSION)
      host:             \(architecture)
      max IPA bits:     \(system.maxIPABits)
      CCA:              \(cca)
      guest_memfd:      \(yesNo(CKVM_CAP_GUEST_MEMFD))
      memory attributes: \(yesNo(CKVM_CAP_MEMORY_ATTRIBUTES))
      SVE:              \(yesNo(CKVM_CAP_ARM_SVE))
      PMUv3:            \(yesNo(CKVM_CAP_ARM_PMU_V3))
      external aborts:  \(yesNo(CKVM_CAP_ARM_INJECT_EXT_DABT))
      """)
  }
}
