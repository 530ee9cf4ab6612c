"""Stack configuration the program needs, as one typed value.

`infra/__main__.py` fills it from `pulumi.Config("estate")` (Pulumi.<stack>.yaml); the offline plan
and the tests fill it directly. Keeping it a plain dataclass means the program itself never reads
Pulumi config, so it runs the same under the engine and under mocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ESTATE_DIR = "inventory/demo"
DEMO_SSH_PUBLIC_KEY = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQC1VNVaFfzhcMPUd0VGNIvZE9e+j2QnYrT73r9kCF4eBJ4icpvlj7j/1zeO/ZkP"
    "Vomm1oFUUWd30/RPfAYCZu4qjOF+frmoHjZPwSg7n6dCaONfLBXe5EyUuIIcQzcyoe1iMVh7cWPCBme+eyYSYmbm7m+NQZ6WVFqz"
    "PoqZW/rCS3kTSdJfy28BjaFgAUp0LFdjxJ7dXpP5aA6KW3fhefWlZz5/l/buq3/J/XGjGESdgRbMoycJYMVFg1mEwCjznOH7r6Aa"
    "uJI54Nlb29qQGMBEZomFkZ1N/N2Ybc2nbnsRCb3Gm9VwYQPy1So6wsc1tF6qFeNGW+VKAUv2cBaszDA4fLvRqeADjjNH7FrWazF+"
    "tmJeLZdz4oZS2EMwUM+P4DascuHbCLZjqy0JLD4mYAvyC/JXFnZWfP6g+myPs1/MIvLw/lfiF6gzJdBB0imQ5e3yy9wwBd9fgfg5"
    "eA9W4RIJYGf5000LfDI7kO/b5erViUPewCYqjiTnzghn543BpO0="
)


class EstateInputError(ValueError):
    """The estate cannot be built as given (no corp subscription, a name Azure would refuse...).

    Raised by the program for bad input, so the CLI reports it as one line and exit status 2,
    and never confuses it with a bug in the program.
    """


@dataclass(frozen=True)
class InfraConfig:
    stack: str = "demo"
    environment: str = "prod"          # the <env> part of every resource name (prod, test, dev)
    estate_dir: str = DEFAULT_ESTATE_DIR  # estate:dir, relative to the repository root
    # Marks where the program's state lives; the backend itself is chosen by `pulumi login`
    # (azblob://<container>?storage_account=<account> for production), never by the program.
    state_backend: str = "local"
    # Linux VMs accept SSH keys only. The default is a demo key whose private half was thrown
    # away: production stacks set estate:adminSshPublicKey to the break-glass key's public half.
    admin_ssh_public_key: str = DEMO_SSH_PUBLIC_KEY

    @property
    def estate_path(self) -> Path:
        p = Path(self.estate_dir)
        return p if p.is_absolute() else REPO_ROOT / p


def stack_file(stack: str, root: Path = REPO_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def load_stack_config(stack: str, root: Path = REPO_ROOT) -> InfraConfig:
    """The InfraConfig a stack's Pulumi.<stack>.yaml describes (the `estate:` keys).

    security_checks/stack_config.py reads the same file for the `estate` commands (only whether
    the stack exists and its estate:dir), since security_checks may not import the program: keep
    the two in step when a key or a default changes.
    """
    import yaml

    path = stack_file(stack, root)
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob("Pulumi.*.yaml"))
        raise EstateInputError(f"{path}: no such stack file (stacks: {', '.join(known) or 'none'})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise EstateInputError(f"{path}: not valid YAML ({exc})") from None
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise EstateInputError(f"{path}: config: must be a mapping")

    def get(key: str, default: str) -> str:
        value = config.get(f"estate:{key}", default)
        if not isinstance(value, str):
            raise EstateInputError(f"{path}: config.estate:{key}: must be a string")
        return value

    d = InfraConfig()
    return InfraConfig(stack=stack, environment=get("environment", d.environment),
                       estate_dir=get("dir", d.estate_dir), state_backend=get("stateBackend", d.state_backend),
                       admin_ssh_public_key=get("adminSshPublicKey", d.admin_ssh_public_key))
