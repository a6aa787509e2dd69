# buildtrace for Nix: trace-hook, trace-daemon, trace-verify.
{ lib, buildNpmPackage, importNpmLock, nodejs_22, python3, pkgsStatic }:
let
  manifest = builtins.fromJSON (builtins.readFile ./package.json);
  src = lib.fileset.toSource {
    root = ./.;
    fileset = lib.fileset.unions [ ./package.json ./package-lock.json ./tsconfig.json ./src ./daemon ./verify ./hook ./scripts ./schemas ./test ./bench ];
  };
  busybox = pkgsStatic.busybox.override {
    extraConfig = ''
      CONFIG_FEATURE_SH_STANDALONE y
      CONFIG_FEATURE_PREFER_APPLETS y
    '';
  };
in
buildNpmPackage {
  pname = manifest.name;
  inherit (manifest) version;
  src = src;
  # dependencies straight from package-lock.json's integrity hashes: no npmDepsHash to maintain
  npmDeps = importNpmLock { npmRoot = src; };
  npmConfigHook = importNpmLock.npmConfigHook;
  nodejs = nodejs_22;
  # better-sqlite3 is compiled from source by node-gyp; the sandbox has no network.
  nativeBuildInputs = [ python3 ];
  npmBuildScript = "build";
  # trace-hook under a static busybox shell that runs mv as its own applet (fork, no exec):
  # about 1.5 ms less per build than dash plus coreutils' mv (bench/hook-overhead.ts).
  postInstall = ''
    sh scripts/build-hook.sh $out/lib/node_modules/${manifest.name}/dist/trace-hook \
      ${busybox}/bin/busybox /var/spool/buildtrace
  '';
  # the shell trace-hook runs under, for the NixOS module's post-build-hook wrapper
  passthru.hookShell = "${busybox}/bin/busybox sh";
  meta = {
    description = manifest.description;
    license = lib.licenses.asl20;
    mainProgram = "trace-verify";
    platforms = lib.platforms.linux;
  };
}
