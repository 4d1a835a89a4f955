#!/usr/bin/env bash
# Installs what the extension tests need to run inside a real VS Code (NOTES-MACHINE.md, "A real
# VS Code for extension tests"): code-server (VS Code 1.100.3 served to a browser, the last release
# that runs on Node 20) from npm, and Debian's chromium to drive its workbench.
# @vscode/test-electron cannot be used here: it downloads VS Code from Microsoft at test time.
#
# Idempotent: when everything is present it only checks and exits. The install lives outside the
# project's node_modules, in $LINGER_CODE_SERVER_DIR (default:
# ${XDG_CACHE_HOME:-~/.cache}/linger-studio/code-server-<version>); scripts/extension-test.mjs
# looks in the same place. Needs only the npm registry and Debian's apt (no GitHub).
set -euo pipefail

CODE_SERVER_VERSION=4.100.3
# @vscode/ripgrep (a dependency of code-server's VS Code) downloads rg from GitHub in its
# postinstall unless its cache already holds the asset; we seed that cache with Debian's rg.
# Both values are fixed by the code-server version above (lib/vscode/node_modules/@vscode/ripgrep).
RIPGREP_PKG_VERSION=1.15.11
RIPGREP_ASSET_VERSION=v13.0.0-10

dir="${LINGER_CODE_SERVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/linger-studio/code-server-$CODE_SERVER_VERSION}"
entry="$dir/node_modules/code-server/out/node/entry.js"
marker="$dir/.installed-$CODE_SERVER_VERSION"

# One install at a time (parallel CI jobs on one machine share the tools folder and apt).
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9

# --- Debian packages -----------------------------------------------------------------------------
# chromium drives the workbench; libkrb5-dev lets the `kerberos` native module build;
# ripgrep seeds @vscode/ripgrep (and is what VS Code's search uses).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
bash "$(dirname "$0")/apt-install.sh" ${missing[@]+"${missing[@]}"}

# --- code-server ---------------------------------------------------------------------------------
if [ -f "$marker" ] && [ -f "$entry" ]; then
  echo "code-server $CODE_SERVER_VERSION already installed in $dir"
  exit 0
fi

case "$(uname -m)" in
  x86_64) rg_target=x86_64-unknown-linux-musl ;;
  aarch64 | arm64) rg_target=aarch64-unknown-linux-musl ;;
  *) echo "install-code-server: no ripgrep asset name known for $(uname -m)" >&2; exit 1 ;;
esac
# Same directory as @vscode/ripgrep's postinstall: path.join(os.tmpdir(), 'vscode-ripgrep-cache-<v>').
rg_cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION"
rg_asset="$rg_cache/ripgrep-$RIPGREP_ASSET_VERSION-$rg_target.tar.gz"
if [ ! -f "$rg_asset" ]; then
  staging="$(mktemp -d)"
  cp "$(command -v rg)" "$staging/rg"
  mkdir -p "$rg_cache"
  tar -czf "$rg_asset.partial" -C "$staging" rg
  mv "$rg_asset.partial" "$rg_asset"
  rm -rf "$staging"
fi

echo "installing code-server $CODE_SERVER_VERSION into $dir (about a minute, ~300 MB)"
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"; echo "install-code-server: failed, removed $dir" >&2' ERR
# A package.json of its own so npm does not walk up into an unrelated project.
printf '{ "name": "linger-studio-code-server", "private": true }\n' >"$dir/package.json"
(
  cd "$dir"
  # unsafe_perm: code-server's postinstall refuses to run as root without it (CI runs as root).
  # dangerously_allow_all_scripts: npm 11 warns (and later majors refuse) to run dependencies'
  # install scripts not listed in allowScripts; this folder holds only code-server, whose
  # postinstall runs nested `npm install`s that build native modules (argon2, kerberos, node-pty,
  # spdlog, ...) and place @vscode/ripgrep's binary. The env reaches those nested installs too.
  npm_config_yes=true npm_config_unsafe_perm=true npm_config_dangerously_allow_all_scripts=true \
    npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false \
    npm install --no-progress --no-save "code-server@$CODE_SERVER_VERSION"
)
rg_bin="$dir/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
[ -x "$rg_bin" ] || { echo "install-code-server: $rg_bin missing after install" >&2; false; }
[ -f "$entry" ] || { echo "install-code-server: $entry missing after install" >&2; false; }
trap - ERR
touch "$marker"
echo "code-server $CODE_SERVER_VERSION installed in $dir"
