"""Authorization in one place: may this caller do X (in team T), and which rows may it see.

Route checks (`auth.deps.require`, `require_team`), `Principal.has` / `can_see_team` and every service's
visibility filter answer through this module, so a rule changes here or nowhere.

Effective permissions are the organization-wide ones (organization roles and policies) plus, within a team,
the permissions of the caller's roles in that team. Organization admins (roles with allTeams) see every team.

It sits below the domain services and above `auth.catalog` and the domains' models: it imports no service
and no principal loading (a caller is anything with the `Caller` attributes), so `auth.principal` can
build on it. The filter builders return the same SQL the services built themselves (listing benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, or_, select, true

from sailplane.iam.auth import catalog
from sailplane.infra.clusters.models import ProvisionedCluster, ProvisionedClusterTeam
from sailplane.tenancy.org.models import Member
from sailplane.tenancy.service_accounts.models import ServiceAccount
from sailplane.workloads.jobs.models import Job, JobTeam
from sailplane.workloads.models import InteractiveSession, WorkloadConfig
from sailplane.workloads.notebooks.models import Notebook, NotebookTeam

VIEW_TEAM = "CanViewTeam"
VIEW_JOBS = "CanViewJobs"
MANAGE_SESSIONS = "CanManageSessions"
MANAGE_WORKLOAD_CONFIGS = "CanManageWorkloadConfigs"
MANAGE_NOTEBOOKS = "CanManageNotebooks"
USE_CLUSTERS = "CanUseClusters"
MANAGE_NOTIFICATIONS = "CanManageNotifications"


class Holder(Protocol):
    """The identity behind a caller: a service account's, or a user's (None)."""

    @property
    def service_account(self) -> ServiceAccount | None: ...


class Caller(Protocol):
    """What authorization reads of a caller (`auth.principal.Principal` has it)."""

    @property
    def organization_id(self) -> str: ...

    @property
    def member(self) -> Member | None: ...

    @property
    def identity(self) -> Holder: ...

    @property
    def org_role_ids(self) -> frozenset[str]: ...

    @property
    def org_permissions(self) -> frozenset[str]: ...

    @property
    def team_roles(self) -> Mapping[str, frozenset[str]]: ...

    @property
    def team_ids(self) -> frozenset[str]: ...


# --- the permission check -----------------------------------------------------------------------

def all_teams(who: Caller) -> bool:
    """Whether an organization role covers every team (Owner, Admin)."""
    return any(catalog.ORG_ROLES[r].all_teams for r in who.org_role_ids if r in catalog.ORG_ROLES)


def has(who: Caller, permission: str, team_id: str | None = None) -> bool:
    """The permission organization-wide, or (with `team_id`) through a role in that team."""
    if permission in who.org_permissions:
        return True
    if team_id is None:
        return False
    return any(permission in catalog.team_role_permissions(r) for r in who.team_roles.get(team_id, ()))


def sees_all_teams(who: Caller) -> bool:
    """Every team of the organization is visible: an allTeams role, or CanViewTeam organization-wide."""
    return all_teams(who) or VIEW_TEAM in who.org_permissions


def can_see_team(who: Caller, team_id: str) -> bool:
    """A member of the team sees it, and so does whoever sees every team (else the team is a 404)."""
    return team_id in who.team_roles or sees_all_teams(who)


def may_in_any(who: Caller, permission: str, team_ids: Iterable[str]) -> bool:
    """The permission organization-wide or in at least one of the teams (managing a shared resource)."""
    return has(who, permission) or any(has(who, permission, t) for t in team_ids)


def may_name_team(who: Caller, view_permission: str, manage_permission: str, team_id: str) -> bool:
    """Whether a resource's team list may name the team: the caller sees it, or holds the resource's view
    or manage permission organization-wide (else the team is answered as unknown)."""
    return has(who, view_permission) or has(who, manage_permission) or can_see_team(who, team_id)


def sees_all(who: Caller, view_permission: str) -> bool:
    """Every resource of a kind shared with teams is visible: an allTeams role or the view permission
    organization-wide."""
    return all_teams(who) or has(who, view_permission)


def teams_granting(who: Caller, permission: str) -> list[str]:
    """The caller's teams in which a role of theirs grants the permission."""
    return [t for t in who.team_ids if has(who, permission, t)]


def may_use_clusters(who: Caller) -> bool:
    """Clusters are for whoever works in a team: an allTeams role, a team membership or CanUseClusters."""
    return all_teams(who) or bool(who.team_ids) or has(who, USE_CLUSTERS)


def sees_all_clusters(who: Caller) -> bool:
    """Every provisioned cluster of the organization is usable: organization admins (allTeams roles) and holders
    of CanUseClusters organization-wide (a policy); everyone else uses those shared with a team of theirs."""
    return all_teams(who) or has(who, USE_CLUSTERS)


def sees_all_configs(who: Caller) -> bool:
    """Every workload config of the organization is visible: whoever sees every team or manages configs
    organization-wide (else those of the caller's own teams)."""
    return sees_all_teams(who) or has(who, MANAGE_WORKLOAD_CONFIGS)


# --- interactive sessions ---------------------------------------------------------------------------

def service_account_id(who: Caller) -> str | None:
    """The service account a caller acts as (an API key's), None for a member."""
    account = who.identity.service_account
    return account.id if account is not None and who.member is None else None


def owns(who: Caller, session: InteractiveSession) -> bool:
    """The session was started by this member, or by this service account."""
    if who.member is not None:
        return session.member_id == who.member.id
    return session.service_account_id is not None and session.service_account_id == service_account_id(who)


def session_admin(who: Caller) -> bool:
    """CanManageSessions organization-wide: sees and closes every session of the organization."""
    return has(who, MANAGE_SESSIONS)


def may_act_in_any(who: Caller) -> bool:
    """A token for someone else's session acts in it (with its team's catalogs): organization admins
    only, whose roles cover every team. Overseeing (CanManageSessions, a Team Admin's or one granted
    by a policy) lets one see and close sessions, not use them."""
    return all_teams(who) and session_admin(who)


def may_use(who: Caller, session: InteractiveSession) -> bool:
    """Whether the caller may get a token for, and call, this session.

    The owner while they can see the session's team (they belong to it, or an organization role or
    policy lets them see every team: what creating the session required, less the right to create
    another one, so a role change inside the team does not cut a running session); an organization
    admin (`may_act_in_any`) always.
    """
    if who.organization_id != session.organization_id:
        return False
    if may_act_in_any(who):
        return True
    return owns(who, session) and can_see_team(who, session.team_id)


# --- notebooks -------------------------------------------------------------------------------------

def sees_all_notebooks(who: Caller) -> bool:
    """Every notebook of the organization: organization admins (allTeams roles) and holders of
    CanManageNotebooks organization-wide (a policy); they may also change and delete any of them."""
    return all_teams(who) or has(who, MANAGE_NOTEBOOKS)


def owns_notebook(who: Caller, notebook: Notebook) -> bool:
    return who.member is not None and notebook.member_id == who.member.id


def may_manage_notebook(who: Caller, notebook: Notebook) -> bool:
    """Change, share or delete the notebook: its owner, or whoever sees every notebook. Members of the
    teams it is shared with may view and open it (and edit its source, `may_edit_notebook_source`)."""
    return who.organization_id == notebook.organization_id and (
        owns_notebook(who, notebook) or sees_all_notebooks(who))


def may_edit_notebook_source(who: Caller, notebook: Notebook, team_ids: Iterable[str]) -> bool:
    """Replace or restore the source: whoever may manage the notebook, or CanManageNotebooks in one of the
    teams it is shared with (Viewers of those teams read it only)."""
    return may_manage_notebook(who, notebook) or (
        who.organization_id == notebook.organization_id and may_in_any(who, MANAGE_NOTEBOOKS, team_ids))


def may_manage_notifications(who: Caller, team_id: str | None, member_id: str | None) -> bool:
    """A notification channel's or rule's owner: a member manages their own (and organization-wide
    CanManageNotifications everyone's), a team's need the permission in that team, the organization's need it
    organization-wide."""
    if member_id is not None:
        return (who.member is not None and who.member.id == member_id) or has(who, MANAGE_NOTIFICATIONS)
    if team_id is not None:
        return has(who, MANAGE_NOTIFICATIONS, team_id)
    return has(who, MANAGE_NOTIFICATIONS)


def sees_notifications_of(who: Caller, team_id: str | None, member_id: str | None) -> bool:
    """Whether a channel or rule is visible (else 404): the organization's to everyone of it, a team's to whoever
    sees the team, a member's to that member and to whoever may manage it."""
    if member_id is not None:
        return may_manage_notifications(who, team_id, member_id)
    if team_id is not None:
        return can_see_team(who, team_id) or has(who, MANAGE_NOTIFICATIONS)
    return True


# --- list filters ---------------------------------------------------------------------------------

def team_filter(who: Caller) -> list[str] | None:
    """The team IDs a team listing is limited to (its `team_ids` parameter), None when it sees them all."""
    return None if sees_all_teams(who) else list(who.team_ids)


def shared_with_visible_team(who: Caller, view_permission: str, resource_id: Any, link_resource_id: Any,
                             link_team_id: Any) -> ColumnElement[bool]:
    """Rows of a resource shared with teams through a link table: all of them for `sees_all`, else those
    linked to a team in which the caller holds the view permission."""
    if sees_all(who, view_permission):
        return true()
    teams = teams_granting(who, view_permission)
    clause: ColumnElement[bool] = resource_id.in_(select(link_resource_id).where(link_team_id.in_(teams)))
    return clause


def jobs_visible_to(who: Caller) -> ColumnElement[bool]:
    """The jobs the caller may see (everything else is a 404)."""
    return shared_with_visible_team(who, VIEW_JOBS, Job.id, JobTeam.job_id, JobTeam.team_id)


def configs_visible_to(who: Caller) -> ColumnElement[bool] | None:
    """The workload configs the caller may see; None: every one of the organization."""
    if sees_all_configs(who):
        return None
    return WorkloadConfig.team_id.in_(who.team_ids)


def clusters_visible_to(who: Caller) -> ColumnElement[bool] | None:
    """The provisioned clusters the caller may see and name in a workload; None: every one of the organization
    (`sees_all_clusters`). The built-in cluster is shared with every team and is not a row."""
    if sees_all_clusters(who):
        return None
    return ProvisionedCluster.id.in_(select(ProvisionedClusterTeam.cluster_id)
                                     .where(ProvisionedClusterTeam.team_id.in_(sorted(who.team_ids))))


def sessions_visible_to(who: Caller) -> ColumnElement[bool] | None:
    """None: every session of the organization (`session_admin`); else the caller's own sessions and
    those of the teams in which they hold CanManageSessions."""
    if session_admin(who):
        return None
    if who.member is not None:
        mine: ColumnElement[bool] = InteractiveSession.member_id == who.member.id
    else:
        mine = InteractiveSession.service_account_id == service_account_id(who)
    managed = sorted(teams_granting(who, MANAGE_SESSIONS))
    return or_(mine, InteractiveSession.team_id.in_(managed)) if managed else mine


def notebooks_visible_to(who: Caller) -> ColumnElement[bool] | None:
    """None: every notebook of the organization (`sees_all_notebooks`); else the caller's own notebooks
    and those shared with a team they belong to (a service account owns none)."""
    if sees_all_notebooks(who):
        return None
    shared: ColumnElement[bool] = Notebook.id.in_(
        select(NotebookTeam.notebook_id).where(NotebookTeam.team_id.in_(sorted(who.team_ids))))
    if who.member is None:
        return shared
    return or_(Notebook.member_id == who.member.id, shared)


def notifications_visible_to(who: Caller, team_id: Any, member_id: Any) -> ColumnElement[bool] | None:
    """The list filter of `sees_notifications_of` over a table's owner columns; None: every row of the
    organization."""
    if has(who, MANAGE_NOTIFICATIONS):
        return None
    organization: ColumnElement[bool] = and_(team_id.is_(None), member_id.is_(None))
    teams = team_id.is_not(None) if sees_all_teams(who) else team_id.in_(sorted(who.team_ids))
    visible = or_(organization, and_(member_id.is_(None), teams))
    return visible if who.member is None else or_(visible, member_id == who.member.id)
