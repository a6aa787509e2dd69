# services.buildtrace.substituter: a verifying substituter on loopback (trace-verify serve).
# Nix substitutes only from it, and trusts only its key: a path lands in the store only when
# the closure that produced it verifies under the consumer's own policy.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkEnableOption mkIf mkOption types;
  cfg = config.services.buildtrace.substituter;
  stateDir = "/var/lib/buildtrace-substituter";
  otherSubstituters = builtins.filter (s: s != "http://${cfg.listen}") (config.nix.settings.substituters or [ ]);
in
{
  options.services.buildtrace.substituter = {
    enable = mkEnableOption "a local binary cache that serves only what verifies under your trust policy (trace-verify serve)";

    package = mkOption {
      type = types.package;
      default = config.services.buildtrace.package or (pkgs.callPackage ../package.nix { });
      description = "The buildtrace package (trace-verify).";
    };

    policy = mkOption {
      type = types.path;
      description = "The trust policy (schemas/trust-policy.schema.json): the keys and thresholds a closure must satisfy.";
    };

    caches = mkOption {
      type = types.listOf (types.strMatching "(file|https?)://.*");
      example = [ "https://cache.example.org" ];
      description = "Upstream binary caches holding the outputs and their traces, in order of preference.";
    };

    listen = mkOption {
      type = types.strMatching "(127\\.[0-9.]+|\\[::1\\]|localhost):[0-9]+";
      default = "127.0.0.1:37515";
      description = "Loopback address and port; Nix is pointed at http://<listen>.";
    };

    allowOtherSubstituters = mkOption {
      type = types.bool;
      default = false;
      description = "Keep other substituters next to the verifying one (they would install paths that never verified).";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.allowOtherSubstituters || otherSubstituters == [ ];
        message = ''
          services.buildtrace.substituter: nix.settings.substituters also lists ${toString otherSubstituters};
          Nix would install from them whatever they sign, verified or not. Remove them (the substituter
          reads those caches itself: add them to services.buildtrace.substituter.caches), or set
          services.buildtrace.substituter.allowOtherSubstituters = true.
        '';
      }
      { assertion = cfg.caches != [ ]; message = "services.buildtrace.substituter.caches is empty: there is nothing to serve from."; }
    ];

    nix.settings.substituters = [ "http://${cfg.listen}" ];
    # a refusal is not remembered for an hour: a path that verifies later (new traces, a policy
    # change) is asked for again
    nix.settings.narinfo-cache-negative-ttl = 0;
    # the key is made at the service's first start; Nix reads it from the state directory
    # (`!include` skips a file that does not exist yet, so Nix trusts nothing until then)
    nix.settings.trusted-public-keys = lib.mkForce [ ];
    nix.extraOptions = ''
      !include ${stateDir}/nix.conf
    '';

    systemd.services.buildtrace-substituter = {
      description = "buildtrace: a substituter that serves only what verifies";
      wantedBy = [ "multi-user.target" ];
      before = [ "nix-daemon.service" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/trace-verify serve --policy ${cfg.policy} ${lib.concatMapStringsSep " " (c: "--cache ${c}") cfg.caches} --listen ${cfg.listen} --state-dir ${stateDir}";
        Restart = "on-failure";
        RestartSec = 2;
        DynamicUser = true;
        StateDirectory = "buildtrace-substituter";
        StateDirectoryMode = "0755";
        # the key file is 0600 inside; nix.conf beside it is what nix-daemon reads
        UMask = "0022";
        # Nix's database and the .drv files: read-only
        ReadOnlyPaths = [ "/nix/var/nix/db" "/nix/store" ];
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        CapabilityBoundingSet = "";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = false;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" ];
      };
    };
  };
}
