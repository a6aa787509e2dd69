# A buildtrace builder for AMD SEV-SNP, as a NixOS profile, and the builder image in the layout
# trace-verify measures (docs/rebuilding-builders.md):
#   $out/firmware.fd  the AmdSev OVMF build (measured direct boot: it checks QEMU's kernel hashes table)
#   $out/kernel       the NixOS kernel QEMU boots with -kernel
#   $out/initrd       NixOS's netboot ramdisk: the whole system (Nix, trace-daemon) inside the initrd,
#                     so everything that signs traces is covered by the launch measurement
#   $out/cmdline      the exact -append string (init=<toplevel>/init and the kernel parameters)
# Use: imports = [ (import ./nixos-module/builder-image.nix) ]; set
# services.buildtrace.builderImage.firmware to an AmdSevX64 OVMF.fd built from source you
# trust (edk2 OvmfPkg/AmdSev/AmdSevX64.dsc), and build config.system.build.buildtraceImage.
# Evaluated here only with stand-ins for nixpkgs (test/rebuilding-builders.test.ts); booting it
# needs SEV-SNP hardware and is not tested by this repository.
{ config, lib, pkgs, modulesPath, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.buildtrace.builderImage;
in
{
  imports = [
    ./default.nix
    # system.build.netbootRamdisk: the system's store as a squashfs inside the initrd
    (modulesPath + "/installer/netboot/netboot.nix")
  ];

  options.services.buildtrace.builderImage = {
    firmware = mkOption {
      type = types.path;
      description = "The AmdSevX64 OVMF image (OVMF.fd) QEMU gets with -bios; its bytes are part of the measurement.";
    };
    extraCmdline = mkOption {
      type = types.str;
      default = "console=ttyS0";
      description = "Kernel parameters added after init= and boot.kernelParams (all of it is measured).";
    };
  };

  config = {
    services.buildtrace = {
      enable = true;
      # TEE mode: the key is generated in the guest at every start and attested (configfs-tsm)
      signingKeyFile = null;
      tee.provider = "sev-snp";
    };
    system.build.buildtraceImage = pkgs.runCommand "buildtrace-builder-image" { } ''
      mkdir $out
      cp ${cfg.firmware} $out/firmware.fd
      cp ${config.system.build.kernel}/${config.system.boot.loader.kernelFile} $out/kernel
      cp ${config.system.build.netbootRamdisk}/initrd $out/initrd
      printf %s ${lib.escapeShellArg "init=${config.system.build.toplevel}/init ${toString config.boot.kernelParams} ${cfg.extraCmdline}"} > $out/cmdline
    '';
  };
}
