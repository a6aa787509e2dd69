# NixOS VM test (needs KVM): a builder with the module builds a derivation, the trace
# lands in a file:// cache, and trace-verify on a second machine accepts it and rejects
# a tampered copy.   nix build .#checks.x86_64-linux.vm
{ self }:
{ pkgs, lib, ... }:
let
  expr = ''derivation { name = "vm-test"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo hello > $out" ]; }'';
in
{
  name = "buildtrace";

  nodes.builder = { ... }: {
    imports = [ self.nixosModules.default ];
    services.buildtrace = {
      enable = true;
      signingKeyFile = "/var/lib/buildtrace-keys/builder.sec";
      caches = [ "file:///var/cache/buildtrace" ];
      uploadOutputs = true;
    };
    # started by the test once the key exists
    systemd.services.buildtrace.wantedBy = lib.mkForce [ ];
    systemd.tmpfiles.rules = [ "d /var/cache/buildtrace 0755 root root - -" ];
    nix.settings.experimental-features = [ "nix-command" ];
  };

  nodes.verifier = { pkgs, ... }: {
    environment.systemPackages = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
    nix.settings.experimental-features = [ "nix-command" ];
  };

  testScript = ''
    start_all()
    builder.succeed("mkdir -p /var/lib/buildtrace-keys")
    builder.succeed("nix key generate-secret --key-name builder-1 > /var/lib/buildtrace-keys/builder.sec")
    builder.succeed("chmod 600 /var/lib/buildtrace-keys/builder.sec")
    pub = builder.succeed("nix key convert-secret-to-public < /var/lib/buildtrace-keys/builder.sec").strip()
    builder.succeed("systemctl start buildtrace")
    builder.wait_for_unit("buildtrace.service")
    builder.succeed("echo '${expr}' > /tmp/t.nix")
    drv = builder.succeed("nix-instantiate /tmp/t.nix").strip()
    builder.succeed("nix-build /tmp/t.nix")
    builder.succeed("trace-daemon push --wait")
    builder.succeed(f"trace-daemon show {drv}")
    builder.succeed("trace-daemon status | grep -q 'file:///var/cache/buildtrace: 1 published'")
    # hand the cache to the verifier (small: one derivation)
    cache = builder.succeed("tar -C /var/cache -czf - buildtrace | base64 -w0").strip()
    verifier.succeed(f"echo {cache} | base64 -d | tar -C /tmp -xzf -")
    verifier.succeed("echo '${expr}' > /tmp/t.nix")
    vdrv = verifier.succeed("nix-instantiate /tmp/t.nix").strip()
    assert vdrv == drv, f"{vdrv} != {drv}"
    verifier.succeed(f"""echo '{{"keys": {{"builder": {{"publicKey": "{pub}"}}}}, "trust": "builder"}}' > /tmp/policy.json""")
    verifier.succeed(f"trace-verify {drv} --policy /tmp/policy.json --cache file:///tmp/buildtrace")
    # tamper: change one character of the signed payload
    verifier.succeed("f=$(ls /tmp/buildtrace/traces/* | head -1); sed -i 's/\"payload\":\"e/\"payload\":\"f/' $f")
    verifier.fail(f"trace-verify {drv} --policy /tmp/policy.json --cache file:///tmp/buildtrace")
  '';
}
