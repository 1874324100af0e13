#!/usr/bin/env bash
# terraform with this project's CLI configuration: the hashicorp/aws provider from an offline filesystem mirror
# where the machine has one (TF_PROVIDER_MIRROR, or a fixed root-owned one; remembered in build/terraform.rc), the
# registry otherwise.
# Usage: scripts/terraform.sh [-chdir=DIR] COMMAND [ARGS...]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rc="$repo/build/terraform.rc"
if ! command -v terraform >/dev/null; then
  echo "error: terraform is not on the PATH (Terraform >= 1.10: python3 -m scripts.building.terraform_cli ensure)" >&2
  exit 127
fi
if [[ ! -f "$rc" ]]; then
  mkdir -p "$repo/build"
  mirror="${TF_PROVIDER_MIRROR:-}"
  # Otherwise only a fixed mirror that root owns and nobody else may write: a provider is code Terraform runs with
  # the account's keys, and a folder found by searching the disk could be anyone's (another checkout's .terraform).
  if [[ -z "$mirror" ]]; then
    for candidate in /opt/tf-plugins /usr/share/terraform/plugins; do
      if [[ -d "$candidate/registry.terraform.io/hashicorp/aws" && "$(stat -c %u "$candidate")" == 0 ]] &&
        [[ -z "$(find "$candidate" -maxdepth 4 -perm /022 -print -quit)" ]]; then
        mirror="$candidate" && break
      fi
    done
  fi
  if [[ -n "$mirror" ]]; then
    cat > "$rc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
RC
  else
    echo "# no offline provider mirror found: providers come from the registry" > "$rc"
  fi
fi
export TF_CLI_CONFIG_FILE="$rc"
exec terraform "$@"
