"""Git object caches: one budget (tree entries, blob characters) for every installation of a process, LRU."""

from __future__ import annotations

from github_double import GitHubDouble, Recorded, private_key_pem

from bot.github.client import GatewayFactory, GitObjectCache
from bot.settings import Settings


def _factory(double: GitHubDouble, cache: GitObjectCache | None = None, max_gateways: int = 64) -> GatewayFactory:
    settings = Settings(webhook_secret="s", app_id="99", private_key=private_key_pem(), github_api_url=double.base_url)
    return GatewayFactory(
        settings, seconds_between_requests=0, seconds_between_writes=0, retry=0, cache=cache, max_gateways=max_gateways
    )


def _reads(requests: list[Recorded]) -> list[str]:
    return [str(r) for r in requests if "access_tokens" not in str(r)]


def _files(n: int, tag: str) -> dict[str, str]:
    return {f"f{i}.txt": f"{tag}-{i}-" + "x" * 90 for i in range(n)}  # about 100 characters each, all distinct


def test_many_installations_share_one_budget(gh: GitHubDouble) -> None:
    cache = GitObjectCache(max_tree_entries=25, max_blob_chars=1_000)
    factory = _factory(gh, cache, max_gateways=3)
    most = (0, 0, 0)
    for inst in range(1, 21):  # twenty installations, each reading a whole repository of 8 files
        repo = f"org{inst}/app"
        gh.add_repo(repo, _files(8, f"i{inst}"), installation_id=inst)
        gw = factory(inst)
        _, tree = gw.read_tree_at(repo, "main")
        assert len(gw.read_blobs(repo, list(tree.values()))) == 8  # every text is answered, cached or not
        used = cache.usage()
        most = (max(most[0], used.tree_entries), max(most[1], used.blob_chars), max(most[2], factory.gateways()))
    # Recounted from what is held, not from running totals: bounded by the policy, not by the installations.
    assert most[0] <= 25 and most[1] <= 1_000 and most[2] <= 3
    assert cache.usage().blob_chars > 800  # and the budget is used, not thrown away


def test_the_most_recently_used_objects_stay(gh: GitHubDouble) -> None:
    cache = GitObjectCache(max_tree_entries=100, max_blob_chars=1_000)
    factory = _factory(gh, cache)
    for inst in (1, 2, 3):
        gh.add_repo(f"org{inst}/app", _files(4, f"i{inst}"), installation_id=inst)
    one = factory(1)
    _, tree1 = one.read_tree_at("org1/app", "main")
    one.read_blobs("org1/app", list(tree1.values()))  # 4 x 100 characters
    _, tree2 = factory(2).read_tree_at("org2/app", "main")
    factory(2).read_blobs("org2/app", list(tree2.values()))  # 800 characters held
    gh.reset_requests()
    one.read_blobs("org1/app", list(tree1.values()))  # used again: now the most recent
    assert _reads(gh.requests) == []
    _, tree3 = factory(3).read_tree_at("org3/app", "main")
    factory(3).read_blobs("org3/app", list(tree3.values()))  # 400 more: installation 2's blobs go first
    gh.reset_requests()
    one.read_blobs("org1/app", list(tree1.values()))
    assert _reads(gh.requests) == []
    factory(2).read_blobs("org2/app", list(tree2.values()))
    assert _reads(gh.requests) == ["POST /graphql EcrCacheState[blobs]"]


def test_an_installation_never_reads_another_installations_objects(gh: GitHubDouble) -> None:
    factory = _factory(gh)
    same = {"Dockerfile": "FROM alpine\n"}  # the same content: the same blob sha in both repositories
    gh.add_repo("a/app", same, installation_id=1)
    gh.add_repo("b/app", same, installation_id=2)
    _, tree_a = factory(1).read_tree_at("a/app", "main")
    factory(1).read_blobs("a/app", list(tree_a.values()))
    sha_a, _ = factory(1).read_tree_at("a/app", "main")
    gh.reset_requests()
    # Installation 2 asks for installation 1's tree and blob by sha: GitHub decides, not our cache.
    gw2 = factory(2)
    assert not gw2.has_seen("a/app")
    gw2.read_blobs("b/app", list(tree_a.values()))
    assert _reads(gh.requests) == ["POST /graphql EcrCacheState[blobs]"]
    gh.reset_requests()
    gw2.read_tree("b/app", sha_a)
    assert _reads(gh.requests) == [f"GET /repos/b/app/git/trees/{sha_a}"]


def test_evicted_gateways_are_rebuilt_and_idle_ones_go_first(gh: GitHubDouble) -> None:
    factory = _factory(gh, max_gateways=2)
    first = factory(1)._client
    factory(2)
    assert factory(1)._client is first  # used again: the most recent
    second = factory(3)._client  # evicts installation 2, the least recently used
    assert factory.gateways() == 2
    assert factory(1)._client is first and factory(3)._client is second
    assert factory(2)._client not in (first, second) and factory.gateways() == 2


def test_a_tree_larger_than_the_budget_is_not_kept(gh: GitHubDouble) -> None:
    cache = GitObjectCache(max_tree_entries=5, max_blob_chars=1_000)
    factory = _factory(gh, cache)
    gh.add_repo("o/big", _files(6, "big"))
    sha, _ = factory(1).read_tree_at("o/big", "main")
    assert cache.usage().tree_entries == 0
    gh.reset_requests()
    factory(1).read_tree("o/big", sha)
    assert _reads(gh.requests) == [f"GET /repos/o/big/git/trees/{sha}"]
