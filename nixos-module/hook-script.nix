# The post-build-hook Nix runs: the previously configured hook first (when chained,
# keeping its exit status), then trace-hook, which never fails. `shell` is the package's
# static busybox shell when it has one: NixOS's /bin/sh is bash, whose start-up alone
# would add about 1 ms per build; without a chained hook the wrapper execs trace-hook.
{ traceHook, spoolDir, chainPostBuildHook, shell }:
if chainPostBuildHook == null then ''
  #!${shell}
  export BUILDTRACE_SPOOL=${spoolDir}
  exec ${traceHook}
'' else ''
  #!${shell}
  status=0
  ${toString chainPostBuildHook} || status=$?
  BUILDTRACE_SPOOL=${spoolDir} ${traceHook}
  exit $status
''
