# Assertions of the module, as a pure function of its options (evaluated in CI too).
{ cfg, storeDir }:
[
  {
    assertion = !(builtins.substring 0 (builtins.stringLength storeDir + 1) (toString cfg.signingKeyFile) == storeDir + "/");
    message = ''
      services.buildtrace.signingKeyFile = ${toString cfg.signingKeyFile} is inside the Nix store, where every
      user can read it. Keep the key outside the store (for example /var/lib/buildtrace-keys/builder.sec,
      mode 0600, made with `nix key generate-secret --key-name <host>-1`); the service reads it through
      systemd's LoadCredential.'';
  }
  {
    assertion = cfg.caches != [ ] || cfg.localOnly;
    message = ''
      services.buildtrace.caches is empty: traces would stay on this machine, where no consumer can verify
      them. Add a cache (file:///…, https://…, or s3://bucket?endpoint=…&region=…), or set
      services.buildtrace.localOnly = true if that is what you want.'';
  }
  {
    assertion = cfg.tee.provider != "simulated" || cfg.tee.allowSimulated;
    message = ''
      services.buildtrace.tee.provider = "simulated" makes evidence that proves nothing about hardware; it is
      for tests and demos. Use "sev-snp" or "tdx" on a confidential VM, "none" elsewhere, or set
      services.buildtrace.tee.allowSimulated = true on a test machine.'';
  }
]
