# The trace-daemon configuration the module writes, as a pure function of the module's
# options (no nixpkgs needed), so CI can evaluate it and validate the result against
# schemas/daemon-config.schema.json.
cfg:
let
  known = (if cfg.tee.provider == "none" then { signingKeyFile = "/run/credentials/buildtrace.service/signing-key"; } else { }) // {
    spoolDir = cfg.spoolDir;
    stateDir = "/var/lib/buildtrace";
    socket = "/run/buildtrace/daemon.sock";
    caches = map (url: { inherit url; }) cfg.caches;
    uploadOutputs = cfg.uploadOutputs;
    tee = {
      provider = cfg.tee.provider;
      perTrace = cfg.tee.perTrace;
      allowSimulated = cfg.tee.allowSimulated;
    };
  };
in
# freeform settings first; what the module manages (paths, key, caches, TEE) wins
cfg.settings // known
