"""The fixed catalogs of permissions, permission bundles, organization roles and team roles.

Roles are defined by the platform (users cannot create roles); organizations differ only in who
holds which role and in their policies.
"""

from __future__ import annotations

from dataclasses import dataclass

ORG = "organization"
TEAM = "team"


@dataclass(frozen=True)
class Permission:
    relation: str
    description: str
    object_types: tuple[str, ...]
    system_only: bool = False


PERMISSIONS: tuple[Permission, ...] = (
    Permission("CanManageOrganization", "Update organization settings.", (ORG,)),
    Permission("CanManageOwners", "Grant or remove the Owner role.", (ORG,), system_only=True),
    Permission("CanViewMembers", "Search and view organization members.", (ORG,)),
    Permission("CanManageUsers", "Create, update and remove users and members; reset passwords and MFA.", (ORG,)),
    Permission("CanInviteMembers", "Invite people to the organization.", (ORG,)),
    Permission("CanCreateTeams", "Create teams.", (ORG,)),
    Permission("CanViewTeam", "View a team and its members.", (ORG, TEAM)),
    Permission("CanManageTeam", "Update or delete a team and manage its members and their roles.", (ORG, TEAM)),
    Permission("CanManagePolicies", "Grant permissions to principals with organization policies.", (ORG,)),
    Permission("CanManageServiceAccounts", "Manage service accounts and their API keys.", (ORG,)),
    Permission("CanViewAuditLog", "Read the organization's audit log.", (ORG,)),
    Permission("CanManageIdentityProviders", "Configure single sign-on identity providers.", (ORG,)),
    Permission("CanManageInfrastructure", "Manage cloud connections, networks and clusters.", (ORG,)),
    Permission("CanUseClusters", "Run workloads on the team's clusters.", (ORG, TEAM)),
    Permission("CanViewCatalogs", "View catalogs shared with the team.", (ORG, TEAM)),
    Permission("CanManageCatalogs", "Create, update and share catalogs.", (ORG, TEAM)),
    Permission("CanViewQueries", "View saved queries shared with the team.", (ORG, TEAM)),
    Permission("CanManageQueries", "Create, update and share saved queries.", (ORG, TEAM)),
    Permission("CanViewJobs", "View jobs and job runs shared with the team.", (ORG, TEAM)),
    Permission("CanManageJobs", "Create, update and delete jobs.", (ORG, TEAM)),
    Permission("CanRunJobs", "Trigger, release, retry and cancel job runs.", (ORG, TEAM)),
    Permission("CanManageWorkloadConfigs", "Create workload configs (compute profiles).", (ORG, TEAM)),
    Permission("CanCreateSessions", "Open interactive Spark Connect sessions.", (ORG, TEAM)),
    Permission("CanManageSessions", "View and close other members' sessions.", (ORG, TEAM)),
    Permission("CanManageNotebooks", "Create and run notebooks.", (ORG, TEAM)),
    Permission("CanManageNotifications", "Manage notification channels and rules.", (ORG, TEAM)),
)
PERMISSION_NAMES = frozenset(p.relation for p in PERMISSIONS)
GRANTABLE = frozenset(p.relation for p in PERMISSIONS if not p.system_only)
TEAM_SCOPED = frozenset(p.relation for p in PERMISSIONS if TEAM in p.object_types)

BUNDLES: dict[str, tuple[str, ...]] = {
    "OrganizationAdministration": (
        "CanManageOrganization", "CanManageUsers", "CanInviteMembers", "CanManagePolicies",
        "CanManageServiceAccounts", "CanViewAuditLog", "CanManageIdentityProviders", "CanCreateTeams",
    ),
    "Directory": ("CanViewMembers",),
    "TeamAdministration": ("CanViewTeam", "CanManageTeam"),
    "Infrastructure": ("CanManageInfrastructure", "CanUseClusters"),
    "ClusterUse": ("CanUseClusters",),
    "DataRead": ("CanViewCatalogs", "CanViewQueries"),
    "DataWrite": ("CanManageCatalogs", "CanManageQueries"),
    "Workloads": (
        "CanViewJobs", "CanManageJobs", "CanRunJobs", "CanManageWorkloadConfigs", "CanCreateSessions",
        "CanManageNotebooks", "CanManageNotifications",
    ),
    "WorkloadOversight": ("CanManageSessions",),
    "ReadOnly": ("CanViewTeam", "CanViewCatalogs", "CanViewQueries", "CanViewJobs"),
    "Ownership": ("CanManageOwners",),
}


@dataclass(frozen=True)
class Role:
    id: str
    name: str
    description: str
    bundles: tuple[str, ...]
    rank: int
    all_teams: bool = False
    break_glass: bool = False

    @property
    def permissions(self) -> frozenset[str]:
        return frozenset(p for b in self.bundles for p in BUNDLES[b])


OWNER, ADMIN, MEMBER, AUDITOR = "OWNER", "ADMIN", "MEMBER", "AUDITOR"
TEAM_ADMIN, TEAM_DEVELOPER, TEAM_VIEWER = "TEAMADMIN", "TEAMDEVELOPER", "TEAMVIEWER"

_ALL_BUNDLES = tuple(BUNDLES)
ORG_ROLES: dict[str, Role] = {
    r.id: r
    for r in (
        Role(OWNER, "Owner", "Full control of the organization, including who its owners are.", _ALL_BUNDLES,
             rank=100, all_teams=True),
        Role(ADMIN, "Admin", "Administers the organization and every team; cannot change ownership.",
             tuple(b for b in _ALL_BUNDLES if b != "Ownership"), rank=80, all_teams=True),
        Role(AUDITOR, "Auditor", "Reads the member directory and the audit log.", ("Directory",), rank=20),
        Role(MEMBER, "Member", "Works in the teams they belong to.", ("Directory",), rank=10),
    )
}
# The Auditor additionally reads the audit log; kept separate from bundles so the bundle stays meaningful.
_EXTRA_ORG_PERMISSIONS: dict[str, frozenset[str]] = {AUDITOR: frozenset({"CanViewAuditLog"})}

TEAM_ROLES: dict[str, Role] = {
    r.id: r
    for r in (
        Role(TEAM_ADMIN, "Team Admin", "Manages the team, its members and everything it owns.",
             ("TeamAdministration", "DataRead", "DataWrite", "Workloads", "WorkloadOversight", "ClusterUse"),
             rank=100),
        Role(TEAM_DEVELOPER, "Developer", "Builds and runs workloads with the team's data and clusters.",
             ("ReadOnly", "DataRead", "DataWrite", "Workloads", "ClusterUse"), rank=50),
        Role(TEAM_VIEWER, "Viewer", "Views the team's resources and runs.", ("ReadOnly",), rank=10),
    )
}
DEFAULT_TEAM_ROLE = TEAM_DEVELOPER
HIGHEST_TEAM_ROLE = max(TEAM_ROLES.values(), key=lambda r: r.rank).id


def org_role_permissions(role_id: str) -> frozenset[str]:
    role = ORG_ROLES.get(role_id)
    if role is None:
        return frozenset()
    return role.permissions | _EXTRA_ORG_PERMISSIONS.get(role_id, frozenset())


def team_role_permissions(role_id: str) -> frozenset[str]:
    role = TEAM_ROLES.get(role_id)
    return (role.permissions & TEAM_SCOPED) if role else frozenset()
