"""One exception root with a stable code, a one-line remedy and an exit status.

Every error an operator can meet is an :class:`AutoopsError` subclass; the CLI maps
them to exit statuses without knowing any of them by name.
"""

from __future__ import annotations

from typing import Any, ClassVar

from autoops.exits import ExitStatus


class AutoopsError(Exception):
    """Root of every error autoops reports to a user."""

    code: ClassVar[str] = "AUTOOPS-INTERNAL"
    status: ClassVar[ExitStatus] = ExitStatus.INTERNAL_ERROR
    default_remedy: ClassVar[str] = "This is a bug in autoops; report it with the command you ran."

    def __init__(self, message: str, *, remedy: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy or self.default_remedy
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """Render for ``--json`` output and audit records."""
        return {
            "code": self.code,
            "message": self.message,
            "remedy": self.remedy,
            "exit_status": int(self.status),
        }


class BadInputError(AutoopsError):
    """Input that autoops refuses before anything runs."""

    code = "AUTOOPS-BAD-INPUT"
    status = ExitStatus.BAD_INPUT
    default_remedy = "Check the command line against `autoops --help`."


class ActionUnknownError(BadInputError):
    code = "AUTOOPS-ACTION-UNKNOWN"
    default_remedy = "Run `autoops list` to see the allowlisted actions."


class ParamInvalidError(BadInputError):
    code = "AUTOOPS-PARAM-INVALID"
    default_remedy = "Run `autoops show ACTION` to see the parameters and their rules."


class ExtraVarRefusedError(ParamInvalidError):
    """An extra variable a front-end passed that the action does not declare."""

    code = "AUTOOPS-EXTRAVAR-REFUSED"
    default_remedy = ("Pass only the action's parameters (`autoops show ACTION`); connection "
                      "and ansible_* variables belong to the inventory.")


class GuardRefusedError(BadInputError):
    """The pre-flight guard cannot tell what would run, where, or for whom: nothing runs."""

    code = "AUTOOPS-GUARD-REFUSED"
    default_remedy = ("Launch the catalog's own playbook on one environment's inventory, with "
                      "no tags, skips, start-at-task or step (`autoops export` sets this up).")


class EnvUnknownError(BadInputError):
    code = "AUTOOPS-ENV-UNKNOWN"
    default_remedy = "Use an environment declared in policy.yml with a directory under inventories/."


class LimitNoHostsError(BadInputError):
    code = "AUTOOPS-LIMIT-NO-HOSTS"
    default_remedy = "Check --limit against the hosts in the environment's inventory."


class InventoryInvalidError(BadInputError):
    code = "AUTOOPS-INVENTORY-INVALID"
    default_remedy = "Fix the inventory; `ansible-inventory -i inventories/ENV --graph` shows it."


class CatalogInvalidError(BadInputError):
    code = "AUTOOPS-CATALOG-INVALID"
    default_remedy = "Fix catalog.yml at the line shown; the README documents its keys."


class PolicyInvalidError(BadInputError):
    code = "AUTOOPS-POLICY-INVALID"
    default_remedy = "Fix policy.yml at the line shown; the README documents its keys."


class CheckUnsupportedError(BadInputError):
    code = "AUTOOPS-CHECK-UNSUPPORTED"
    default_remedy = "This action's playbook does not support check mode; run `autoops plan` without --check."


class PolicyDeniedError(AutoopsError):
    code = "AUTOOPS-POLICY-DENIED"
    status = ExitStatus.DENIED
    default_remedy = "The policy forbids this; `autoops plan` names the rule that decided."


class ApprovalRequiredError(AutoopsError):
    code = "AUTOOPS-APPROVAL-REQUIRED"
    status = ExitStatus.APPROVAL_REQUIRED
    default_remedy = "Run it from a terminal and type the environment name to confirm."


class ConfirmationMismatchError(ApprovalRequiredError):
    code = "AUTOOPS-CONFIRMATION-MISMATCH"
    default_remedy = "Nothing ran. Type the environment name exactly to confirm."


class PlaybookFailedError(AutoopsError):
    code = "AUTOOPS-PLAYBOOK-FAILED"
    status = ExitStatus.PLAYBOOK_FAILED
    default_remedy = "Read the failed tasks above, or `autoops audit show RUN_ID`."


class DeployRolledBackError(PlaybookFailedError):
    """A deploy did not verify, and the hosts it changed were returned to their pre-state."""

    code = "AUTOOPS-DEPLOY-ROLLED-BACK"
    default_remedy = ("The hosts run the release they ran before; fix the revision (the failed "
                      "check and its output are above, `autoops audit show RUN_ID` has the rest) "
                      "and deploy again.")


class HostsUnreachableError(AutoopsError):
    code = "AUTOOPS-HOSTS-UNREACHABLE"
    status = ExitStatus.UNREACHABLE
    default_remedy = "Check that the hosts are up and reachable over SSH, then run again."


class InterruptedRunError(AutoopsError):
    code = "AUTOOPS-INTERRUPTED"
    status = ExitStatus.INTERRUPTED
    default_remedy = "The run was cancelled; `autoops audit show RUN_ID` shows what had run."


class AuditBrokenError(AutoopsError):
    """The audit log cannot be trusted or written: nothing may run (fail closed)."""

    code = "AUTOOPS-AUDIT-BROKEN"
    default_remedy = "Run `autoops audit verify` and restore the log from a backup before running."


class StateError(AutoopsError):
    """The state directory cannot be used: nothing may run (fail closed)."""

    code = "AUTOOPS-STATE-UNUSABLE"
    default_remedy = "Make $AUTOOPS_STATE_DIR a directory you own and can write."


class RunnerError(AutoopsError):
    code = "AUTOOPS-RUNNER-FAILED"
    default_remedy = "ansible-runner could not start the playbook; check the ansible installation."


class NodeFailedError(RunnerError):
    """An execution node could not be reached, or its worker could not run the job."""

    code = "AUTOOPS-NODE-FAILED"
    status = ExitStatus.UNREACHABLE
    default_remedy = ("Check the node: `autoops nodes check --env ENV` (SSH access, autoops "
                      "installed there in the controller's version).")


class NodesInvalidError(BadInputError):
    code = "AUTOOPS-NODES-INVALID"
    default_remedy = "Fix nodes/ENV.yml (see README \"Execution nodes\")."


class NodeUnknownError(BadInputError):
    code = "AUTOOPS-NODE-UNKNOWN"


class SecretsError(BadInputError):
    """A secrets file, key or configuration that autoops refuses to use: nothing runs."""

    code = "AUTOOPS-SECRETS"
    default_remedy = "Run `autoops secrets check`; the README's Secrets section explains the set-up."


class SecretsKeyMissingError(SecretsError):
    code = "AUTOOPS-SECRETS-KEY-MISSING"
    default_remedy = ("Put the environment's age key in place (`autoops secrets init --env ENV` "
                      "creates one) or set SOPS_AGE_KEY_FILE.")


class SecretsKeyWrongError(SecretsError):
    code = "AUTOOPS-SECRETS-KEY-WRONG"
    default_remedy = ("Use this environment's own age key; another environment's key never "
                      "decrypts it (check SOPS_AGE_KEY_FILE / SOPS_AGE_KEY).")


class SecretsTamperedError(SecretsError):
    code = "AUTOOPS-SECRETS-TAMPERED"
    default_remedy = ("The file failed SOPS's integrity check: restore it from git "
                      "(`git checkout -- FILE`) and find out who changed it.")


class SecretsInvalidError(SecretsError):
    code = "AUTOOPS-SECRETS-INVALID"
    default_remedy = "Restore the file from git, or recreate it with `autoops secrets edit`."


class SecretsCrossEnvError(SecretsError):
    code = "AUTOOPS-SECRETS-CROSS-ENV"
    default_remedy = ("Each environment's files must be encrypted to its own recipient only; "
                      "re-key with `autoops secrets rotate --env ENV --new-recipient`.")


class SecretsCheckFailedError(SecretsError):
    code = "AUTOOPS-SECRETS-CHECK-FAILED"
    default_remedy = ("Encrypt the files with `autoops secrets edit`, move plaintext secrets into "
                      "them, or mark a false positive with `# pragma: allowlist secret`.")


class SecretsNoTerminalError(BadInputError):
    """`secrets edit` without a terminal: sops would loop on its "press a key" prompt."""

    code = "AUTOOPS-SECRETS-NO-TERMINAL"
    default_remedy = ("From a script, set values one at a time with the value on stdin: "
                      "`autoops secrets set --env ENV NAME` (and `secrets unset`).")


class SecretsEditorFailedError(BadInputError):
    """The editor exited non-zero or could not start; sops changed nothing."""

    code = "AUTOOPS-SECRETS-EDITOR-FAILED"
    default_remedy = ("Check $EDITOR (it must wait until the file is closed, e.g. `code --wait`) "
                      "and run `autoops secrets edit` again.")


class SecretsNameUnknownError(BadInputError):
    code = "AUTOOPS-SECRETS-NAME-UNKNOWN"
    default_remedy = "`autoops secrets show --env ENV --keys` lists the names a file holds."


class SecretsToolError(AutoopsError):
    code = "AUTOOPS-SECRETS-SOPS"
    default_remedy = "Reinstall autoops (`./bin/autoops` does) so that the sops binary is present."


class LockedError(AutoopsError):
    code = "AUTOOPS-LOCKED"
    status = ExitStatus.BUSY
    default_remedy = ("Wait for that run to finish (`autoops audit show RUN_ID`), or retry with "
                      "--wait SECONDS.")


class HaltedError(AutoopsError):
    """An emergency stop is in force: nothing new starts, runs in progress are cancelled."""

    code = "AUTOOPS-HALTED"
    status = ExitStatus.HALTED
    default_remedy = ("`autoops status` shows the halt and who engaged it; "
                      "`autoops resume [--env ENV] --reason …` lifts it.")


class PromotionRequiredError(PolicyDeniedError):
    code = "AUTOOPS-PROMOTION-REQUIRED"
    default_remedy = ("This environment takes deploys only through its promotion gate: "
                      "`autoops promote APP --from SOURCE --to ENV`.")


class PromotionRefusedError(PolicyDeniedError):
    code = "AUTOOPS-PROMOTION-REFUSED"
    default_remedy = ("Nothing ran. Each unmet condition is named above; `autoops promote … "
                      "--json` shows the evidence.")


class WindowClosedError(PolicyDeniedError):
    code = "AUTOOPS-POLICY-WINDOW"
    default_remedy = ("Run it in the next change window (the message names its opening), or "
                      "with a --break-glass grant: `autoops grant create … --break-glass`.")


class FrozenError(PolicyDeniedError):
    code = "AUTOOPS-POLICY-FREEZE"
    default_remedy = ("Wait for the freeze to end (`autoops policy show --env ENV`), or use a "
                      "--break-glass grant with a reason.")


class GrantError(PolicyDeniedError):
    """A presented grant that autoops refuses: nothing runs."""

    code = "AUTOOPS-GRANT"
    default_remedy = "Ask the grant's issuer for a new grant: `autoops grant create …`."


class GrantMalformedError(GrantError):
    code = "AUTOOPS-GRANT-MALFORMED"
    status = ExitStatus.BAD_INPUT
    default_remedy = "Pass the whole token `autoops grant create` printed (aog1.….…), or a grant id."


class GrantUnknownError(GrantError):
    code = "AUTOOPS-GRANT-UNKNOWN"
    status = ExitStatus.BAD_INPUT
    default_remedy = "`autoops grant list` shows the grants this machine knows; pass the token."


class GrantKeyError(GrantError):
    code = "AUTOOPS-GRANT-KEY"
    status = ExitStatus.BAD_INPUT
    default_remedy = ("Create the environment's signing key with `autoops grant init-keys --env "
                      "ENV` and commit grant-keys/ENV.pub.")


class GrantTtlError(GrantError):
    code = "AUTOOPS-GRANT-TTL"
    status = ExitStatus.BAD_INPUT
    default_remedy = ("Choose a shorter --expires-in: the ceiling shrinks with the risk class "
                      "(`autoops policy show` lists it).")


class GrantForgedError(GrantError):
    code = "AUTOOPS-GRANT-FORGED"
    default_remedy = ("The grant's signature does not verify against the environment's public "
                      "key: it was altered or not issued for this environment.")


class GrantExpiredError(GrantError):
    code = "AUTOOPS-GRANT-EXPIRED"


class GrantRevokedError(GrantError):
    code = "AUTOOPS-GRANT-REVOKED"


class GrantExhaustedError(GrantError):
    code = "AUTOOPS-GRANT-EXHAUSTED"


class GrantScopeError(GrantError):
    code = "AUTOOPS-GRANT-SCOPE"
    default_remedy = ("The grant does not cover this run (`autoops grant show ID` shows its "
                      "scope); ask for a grant that does.")


class ApprovalError(AutoopsError):
    """A second-person approval that cannot be used for this run."""

    code = "AUTOOPS-APPROVAL"
    status = ExitStatus.APPROVAL_REQUIRED
    default_remedy = "`autoops approvals list` shows the requests and their state."


class ApprovalUnknownError(ApprovalError):
    code = "AUTOOPS-APPROVAL-UNKNOWN"
    status = ExitStatus.BAD_INPUT


class ApprovalPendingError(ApprovalError):
    code = "AUTOOPS-APPROVAL-PENDING"
    default_remedy = "A second person must run `autoops approve ID` first."


class ApprovalExpiredError(ApprovalError):
    code = "AUTOOPS-APPROVAL-EXPIRED"
    default_remedy = "Run it again without --approval to request a fresh approval."


class ApprovalPlanChangedError(ApprovalError):
    code = "AUTOOPS-APPROVAL-PLAN-CHANGED"
    default_remedy = ("The plan differs from the approved one (parameters, hosts or content); "
                      "run it without --approval to request approval of the new plan.")


class ApprovalRejectedError(ApprovalError):
    code = "AUTOOPS-APPROVAL-REJECTED"
    status = ExitStatus.DENIED
    default_remedy = "The approver rejected it; `autoops approvals list` shows the reason."


class ApprovalSelfError(ApprovalError):
    code = "AUTOOPS-APPROVAL-SELF"
    status = ExitStatus.DENIED
    default_remedy = "A different person must approve or reject a request than the one who made it."


class ApprovalUsedError(ApprovalError):
    code = "AUTOOPS-APPROVAL-USED"
    status = ExitStatus.DENIED
    default_remedy = "An approval runs once; run it without --approval to request another."


class ApprovalDecidedError(ApprovalError):
    code = "AUTOOPS-APPROVAL-DECIDED"
    status = ExitStatus.BAD_INPUT
    default_remedy = "The request was already approved or rejected; `autoops approvals list`."


class ApproverNotAllowedError(ApprovalError):
    """The actor is not among the approvers the policy names for this environment."""

    code = "AUTOOPS-APPROVER-NOT-ALLOWED"
    status = ExitStatus.DENIED
    default_remedy = ("Ask one of the approvers policy.yml names for this environment "
                      "(`autoops policy show --env ENV`).")


class RunbookInvalidError(BadInputError):
    code = "AUTOOPS-RUNBOOK-INVALID"
    default_remedy = ("Fix the runbook at the line shown; the README's Runbooks section "
                      "documents its keys.")


class ReplayInvalidError(BadInputError):
    code = "AUTOOPS-REPLAY-INVALID"
    default_remedy = ("Give JSON lines of findings, each with at, env, host, check, subject "
                      "and severity (README: Runbooks).")


class ContentInvalidError(BadInputError):
    """The content a run would read cannot be trusted (a symlink out of the project …)."""

    code = "AUTOOPS-CONTENT-INVALID"
    default_remedy = "Replace the symbolic link with the file it points to, inside the project."


class InventoryOverlapError(BadInputError):
    """A host belongs to two environments: one machine could be changed from both."""

    code = "AUTOOPS-INVENTORY-OVERLAP"
    default_remedy = ("Give each machine to exactly one environment (by name and by "
                      "ansible_host + port).")


class ServiceInvalidError(BadInputError):
    """The service-mode configuration cannot be trusted or read: nothing runs."""

    code = "AUTOOPS-SERVICE-INVALID"
    default_remedy = "Re-run `autoops service install …` as root, or fix /etc/autoops/service.yml."


class ServiceCallerError(AutoopsError):
    """The caller may not use the service (not through sudo, or not an operator)."""

    code = "AUTOOPS-SERVICE-CALLER"
    status = ExitStatus.DENIED
    default_remedy = "Call it as `sudo -u SERVICE_USER autoops …`, as a member of the operators group."


class ServiceRefusedError(AutoopsError):
    """A command that would hand the caller the service account's powers (an editor, the lab)."""

    code = "AUTOOPS-SERVICE-REFUSED"
    status = ExitStatus.DENIED
    default_remedy = "Use the non-interactive form (`autoops secrets set`), or run it outside service mode."


class InitDestinationError(BadInputError):
    """`autoops init` was pointed at something it would have to overwrite: nothing is written."""

    code = "AUTOOPS-INIT-DESTINATION"
    default_remedy = ("Name a new or empty directory: `autoops init` never overwrites or merges "
                      "into an existing repository.")


class AlertUnknownError(BadInputError):
    code = "AUTOOPS-ALERT-UNKNOWN"
    default_remedy = "`autoops alerts list --all` lists every finding and its id."


class AlertNotFiringError(BadInputError):
    code = "AUTOOPS-ALERT-NOT-FIRING"
    default_remedy = "Only a firing alert can be acknowledged; silence it to keep it quiet."


class NotifyNoneError(BadInputError):
    code = "AUTOOPS-NOTIFY-NONE"
    default_remedy = ("Set notify_telegram_token and notify_telegram_chat_id (or "
                      "notify_webhook_url and notify_webhook_secret) with `autoops secrets set "
                      "--env ENV NAME`.")


class NotifyFailedError(AutoopsError):
    code = "AUTOOPS-NOTIFY-FAILED"
    status = ExitStatus.UNREACHABLE
    default_remedy = ("Check the notifier's URL, token and chat id in the environment's "
                      "secrets; the message says what the receiver answered.")


class MetricsDirError(BadInputError):
    """The metrics directory is missing, not a directory, open to others, or not writable."""

    code = "AUTOOPS-METRICS-DIR"
    default_remedy = ("Point AUTOOPS_METRICS_DIR (service mode: metrics_dir) at an existing "
                      "directory this account can write and others cannot (node_exporter's "
                      "--collector.textfile.directory).")


class HealBusyError(AutoopsError):
    code = "AUTOOPS-HEAL-BUSY"
    status = ExitStatus.BUSY
    default_remedy = "Nothing to do: the running heal covers this environment."


class WatchBusyError(AutoopsError):
    code = "AUTOOPS-WATCH-BUSY"
    status = ExitStatus.BUSY
    default_remedy = ("Nothing to do: the running watch covers this environment (cron started "
                      "again before it ended; a longer interval avoids the overlap).")


class ScheduleInvalidError(BadInputError):
    """A schedule autoops will not write: nothing is installed, changed or removed.

    A bad interval, an unknown environment, a path cron or systemd cannot carry safely,
    a unit that does not verify, or a file autoops did not write itself.
    """

    code = "AUTOOPS-SCHEDULE-INVALID"
    default_remedy = ("Use --every with minutes that divide an hour (1m 2m 3m 4m 5m 6m 10m 12m 15m "
                      "20m 30m) or hours that divide a day (1h 2h 3h 4h 6h 8h 12h 24h).")
