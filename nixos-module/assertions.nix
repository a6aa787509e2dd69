# Assertions of the module, as a pure function of its options (evaluated in CI too).
{ cfg, storeDir, buildMachines ? [ ], builders ? null }:
let
  teeMode = cfg.tee.provider != "none";
  noBuilders = buildMachines == [ ] && (builders == null || builders == "" || builders == [ ]);
in
[
  {
    assertion = teeMode || cfg.signingKeyFile != null;
    message = ''
      services.buildtrace.signingKeyFile is not set. Without a TEE provider the traces are signed with a Nix
      key file: make one with `nix key generate-secret --key-name <host>-1 > FILE` (mode 0600, outside the
      store) and set signingKeyFile = FILE.'';
  }
  {
    assertion = !teeMode || cfg.signingKeyFile == null;
    message = ''
      services.buildtrace.signingKeyFile is set together with tee.provider = "${cfg.tee.provider}". In TEE mode the
      daemon generates its signing key inside the confidential guest at every start and attests it; a key
      file is a key someone outside the guest could hold. Remove signingKeyFile and have consumers admit the
      guest's measurement (a policy key entry with a tee policy and no publicKey).'';
  }
  {
    assertion = !teeMode || noBuilders;
    message = ''
      services.buildtrace.tee.provider = "${cfg.tee.provider}" with remote builders (nix.buildMachines or
      nix.settings.builders): Nix runs the post-build hook for remote builds too, and this guest's attested
      key would sign builds that ran elsewhere. Build locally in the confidential VM (no remote builders),
      or run without a TEE provider.'';
  }
  {
    assertion = cfg.signingKeyFile == null || !(builtins.substring 0 (builtins.stringLength storeDir + 1) (toString cfg.signingKeyFile) == storeDir + "/");
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
