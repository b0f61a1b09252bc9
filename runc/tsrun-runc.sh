#!/bin/sh
# tsrun-runc: runc's command line, plus tsrun's networking for containers whose config.json
# carries io.tsrun.* annotations (docs/oci-runtime.md).
#
# This front is a shell script so that everything tsrun has no part in costs an exec, not a Node
# start-up: start, state, kill, exec, ps, …, and create/run/delete of containers without tsrun
# annotations, exec runc with the arguments, stdio, descriptors, environment and process id
# unchanged (runc then *is* this process). Only create/run of a bundle whose config.json mentions
# io.tsrun., delete of a container tsrun-runc wired (a marker file says so), --version, and what
# this front cannot parse go to Node (tsrun-runc.cjs beside this file), which looks closer and
# still hands runc anything that is not tsrun's.
#
# Settings come from the environment as for tsrun: TSRUN_ROOT, TSRUN_STORE, TSRUN_LOG, …, plus
# TSRUN_RUNC (the runc to run, default: runc on PATH) and TSRUN_NODE (default: node on PATH).
# `tsrun oci-runtime install` writes a wrapper that fixes them for an engine.
runc=${TSRUN_RUNC:-runc}
command -v "$runc" >/dev/null 2>&1 || for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  [ -x "$d/runc" ] && { runc=$d/runc; break; }
done

node_side() {
  # This script's directory without a dirname/readlink process (two forks on every wired
  # create and delete), unless it was reached through a symlink (npm's bin link).
  case $0 in */*) here=${0%/*} ;; *) here=$(dirname "$(command -v "$0")") ;; esac
  [ -h "$0" ] && here=$(dirname "$(readlink -f "$0")")
  node=${TSRUN_NODE:-$(command -v node)}
  # The plain bundle (with its code cache), as tsrun's launcher: runc.cjs's start-up snapshot only
  # with TSRUN_SNAPSHOT=1 (docs/fast-path.md: it does not pay, and V8 refuses a snapshot built on
  # another CPU with exit 14, which would fail the engine's create), unless node is newer than it.
  blob=$here/runc.snapshot.blob
  if [ "${TSRUN_SNAPSHOT-}" = 1 ] && [ -z "${TSRUN_NO_SNAPSHOT-}" ] && [ -f "$blob" ] && [ -n "$node" ] && [ "$blob" -nt "$node" ]; then
    exec "$node" --snapshot-blob "$blob" -- "$here/tsrun-runc.cjs" "$@"
  fi
  exec "${node:-node}" "$here/tsrun-runc.cjs" "$@"
}

# runc's global flags, then the command; for create/run/delete also their flags, then the id.
# A flag's value is the next word unless written --flag=value; Go accepts -flag and --flag.
cmd= bundle= id= next= root=
for a do
  case $next in
    skip) next=; continue ;;
    bundle) bundle=$a; next=; continue ;;
    root) root=$a; next=; continue ;;
  esac
  if [ -z "$cmd" ]; then
    case $a in
      --root|-root) next=root ;;
      --root=*|-root=*) root=${a#*=} ;;
      --log|-log|--log-format|-log-format|--criu|-criu|--rootless|-rootless) next=skip ;;
      --version|-version|-v|--v|--) node_side "$@" ;;
      -*) ;;
      *) cmd=$a
         case $cmd in create|run|delete) ;; *) exec "$runc" "$@" ;; esac ;;
    esac
  else
    case $a in
      -b|--b|--bundle|-bundle) next=bundle ;;
      -b=*|--b=*|--bundle=*|-bundle=*) bundle=${a#*=} ;;
      --console-socket|-console-socket|--pid-file|-pid-file|--preserve-fds|-preserve-fds) next=skip ;;
      --) node_side "$@" ;;
      -*) ;;
      *) id=$a; break ;;
    esac
  fi
done

case $cmd in
  create|run)
    grep -q 'io\.tsrun\.' "${bundle:-.}/config.json" 2>/dev/null || exec "$runc" "$@" ;;
  delete)
    if [ -n "$TSRUN_ROOT" ]; then rundir=$TSRUN_ROOT/run; else rundir=/run/tsrun; fi
    case $id in
      */*|'') exec "$runc" "$@" ;;
    esac
    # Markers are keyed by runc's root (two engines may use one id): the path as runc's --root
    # gives it, or runc's default, /run/runc (for root; a non-root runc's is under
    # XDG_RUNTIME_DIR, and which one applies needs the euid: a marker there goes to Node, which
    # knows). A root this front cannot normalise without a process is left to Node (runc/wiring.ts).
    if [ -z "$root" ]; then
      root=/run/runc
      case ${XDG_RUNTIME_DIR-} in
        '') ;;
        /*/|*//*|*/./*|*/../*|*/.|*/..|[!/]*) node_side "$@" ;;
        *) [ ! -e "$rundir/runc-net/by-root$XDG_RUNTIME_DIR/runc/$id.json" ] || node_side "$@" ;;
      esac
    fi
    case $root in
      /) ;;
      /*/|*//*|*/./*|*/../*|*/.|*/..) node_side "$@" ;;
      /*) ;;
      *) node_side "$@" ;;
    esac
    # ... or in the layout before (one marker per id), adopted by Node for the root that holds it
    [ -e "$rundir/runc-net/by-root$root/$id.json" ] || [ -e "$rundir/runc-net/$id.json" ] || exec "$runc" "$@" ;;
esac
node_side "$@"
