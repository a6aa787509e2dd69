# services.buildtrace: trace, attest and publish every build on a Nix builder.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkEnableOption mkIf mkOption types literalExpression;
  cfg = config.services.buildtrace;
  settingsFormat = pkgs.formats.json { };
  configFile = settingsFormat.generate "buildtrace-daemon.json" (import ./daemon-config.nix cfg);
  hook = pkgs.writeScript "buildtrace-post-build-hook" (import ./hook-script.nix {
    traceHook = "${cfg.package}/bin/trace-hook";
    shell = cfg.package.hookShell or "/bin/sh";
    inherit (cfg) spoolDir chainPostBuildHook;
  });
  teeOnDevice = cfg.tee.provider == "sev-snp" || cfg.tee.provider == "tdx";
  cli = pkgs.writeShellScriptBin "trace-daemon" ''
    export BUILDTRACE_SOCKET=''${BUILDTRACE_SOCKET:-/run/buildtrace/daemon.sock}
    exec ${cfg.package}/bin/trace-daemon "$@"
  '';
in
{
  imports = [ ./substituter.nix ];

  options.services.buildtrace = {
    enable = mkEnableOption "buildtrace: a signed (and, on confidential VMs, attested) trace of every Nix build, published beside the narinfo files";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The buildtrace package (trace-hook, trace-daemon, trace-verify).";
    };

    signingKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/var/lib/buildtrace-keys/builder.sec";
      description = ''
        Nix secret key file (`nix key generate-secret --key-name <host>-1 > FILE`, mode 0600) that signs the
        traces. Must be outside the Nix store; the service reads it with systemd's LoadCredential. Consumers
        admit its public half (`nix key convert-secret-to-public < FILE`) in their trace-verify policy.
        Required without a TEE provider; must stay null with one (TEE mode: the daemon generates its key
        inside the confidential guest at every start and attests it; consumers admit the measurement).
      '';
    };

    caches = mkOption {
      type = types.listOf (types.strMatching "(file|https?|s3)://.*");
      default = [ ];
      example = [ "s3://nix-cache?endpoint=https://garage.example.org&region=garage" "file:///srv/nix-cache" ];
      description = "Binary caches to publish traces to (`traces/<resolvedInputHash>`), in this order.";
    };

    uploadOutputs = mkOption {
      type = types.bool;
      default = false;
      description = "Also upload every built output (narinfo and NAR, with `nix copy --to`) before its trace.";
    };

    localOnly = mkOption {
      type = types.bool;
      default = false;
      description = "Allow an empty `caches` list (traces stay in the local database).";
    };

    chainPostBuildHook = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "A post-build hook that was configured before; it runs first and its exit status is kept.";
    };

    spoolDir = mkOption {
      type = types.str;
      default = "/var/spool/buildtrace";
      description = "Where trace-hook drops one record per build (root-only, created by tmpfiles).";
    };

    tee = {
      provider = mkOption {
        type = types.enum [ "none" "sev-snp" "tdx" "snpguest" "simulated" ];
        default = "none";
        description = ''
          Hardware evidence for the signing key: `sev-snp` or `tdx` through configfs-tsm (Linux >= 6.7 in a
          confidential VM), `snpguest` through /dev/sev-guest, `none`. `simulated` is for tests only.
        '';
      };
      perTrace = mkOption {
        type = types.bool;
        default = false;
        description = "Also attest every statement, not only the signing key at start-up.";
      };
      allowSimulated = mkOption {
        type = types.bool;
        default = false;
        description = "Permit `tee.provider = \"simulated\"` (never on production builders).";
      };
    };

    settings = mkOption {
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          batchSize = mkOption {
            type = types.ints.between 1 10000;
            default = 500;
            description = "Spool records turned into traces per SQLite transaction.";
          };
          storeInfo = mkOption {
            type = types.enum [ "auto" "db" "cli" ];
            default = "auto";
            description = "How NAR hashes are read: Nix's database read-only (`db`), `nix path-info` (`cli`), or `auto`.";
          };
        };
      };
      default = { };
      description = "Further trace-daemon settings (schemas/daemon-config.schema.json); the module sets paths, key, caches and TEE.";
    };
  };

  config = mkIf cfg.enable {
    assertions = import ./assertions.nix {
      inherit cfg;
      storeDir = builtins.storeDir;
      # TEE mode refuses remote builders: their builds would be signed as this guest's own
      buildMachines = config.nix.buildMachines or [ ];
      builders = config.nix.settings.builders or null;
    };

    nix.settings.post-build-hook = hook;

    systemd.tmpfiles.rules = [ "d ${cfg.spoolDir} 0700 root root - -" ];

    environment.systemPackages = [ cli ];

    systemd.services.buildtrace = {
      description = "buildtrace: signed build traces for every Nix build";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" "nix-daemon.service" ];
      path = [ config.nix.package ];
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/trace-daemon run --config ${configFile}";
        Restart = "on-failure";
        RestartSec = 5;
        LoadCredential = if cfg.signingKeyFile == null then [ ] else [ "signing-key:${toString cfg.signingKeyFile}" ];
        StateDirectory = "buildtrace";
        StateDirectoryMode = "0700";
        RuntimeDirectory = "buildtrace";
        RuntimeDirectoryMode = "0755";
        # root (the hook writes the spool as root, Nix's database is root's), without capabilities
        User = "root";
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        # "-": a path that does not exist (yet) must not stop the service from starting
        ReadWritePaths = [ cfg.spoolDir ] ++ lib.optional teeOnDevice "-/sys/kernel/config/tsm/report"
          ++ lib.concatMap (u: lib.optional (lib.hasPrefix "file://" u) ("-" + lib.removePrefix "file://" u)) cfg.caches;
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = cfg.tee.provider != "snpguest";
        DeviceAllow = lib.optional (cfg.tee.provider == "snpguest") "/dev/sev-guest rw";
        ProtectKernelTunables = !teeOnDevice;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        # V8 compiles JavaScript to machine code at run time
        MemoryDenyWriteExecute = false;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" ];
        UMask = "0077";
      };
    };
  };
}
