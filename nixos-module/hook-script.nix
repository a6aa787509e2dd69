# The post-build-hook Nix runs: the previously configured hook first (when chained,
# keeping its exit status), then trace-hook, which never fails.
{ traceHook, spoolDir, chainPostBuildHook }:
''
  #!/bin/sh
  status=0
  ${if chainPostBuildHook == null then "" else "${toString chainPostBuildHook} || status=$?"}
  BUILDTRACE_SPOOL=${spoolDir} ${traceHook}
  exit $status
''
