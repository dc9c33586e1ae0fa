"""Generated buildspecs: either exactly the intended change (proved) or untouched with a finding; never raise."""

from __future__ import annotations

import json

from buildspec_support import plan_text, unset_uses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.buildspec.plan import verify_buildspec_edit

FLAGS = [
    "-t $REPO:latest",
    "--tag=$REPO:$TAG",
    "-f docker/Dockerfile",
    "--file=Dockerfile",
    '--build-arg "A=b c"',
    "--build-arg X=1",
    "--no-cache",
    "--pull",
    "--platform linux/amd64",
    "--cache-from $REPO:latest",
    "--progress=plain",
    "--target runtime",
]
VERBS = ["docker build", "docker image build", "docker buildx build"]


@st.composite
def build_command(draw: st.DrawFn) -> str:
    verb = draw(st.sampled_from(VERBS))
    flags = draw(st.lists(st.sampled_from(FLAGS), max_size=4, unique=True))
    context = draw(st.sampled_from([".", "./app", "app", "$CODEBUILD_SRC_DIR"]))
    where = draw(st.integers(0, len(flags)))
    words = [verb, *flags[:where], context, *flags[where:]]
    return " ".join(words)


def _item(indent: str, value: str, style: str, comment: str) -> list[str]:
    if style == "plain":
        return [f"{indent}- {value}{comment}"]
    if style == "single":
        return [f"{indent}- '{value}'{comment}"]
    if style == "double":
        return [f"{indent}- {json.dumps(value)}{comment}"]
    if style == "literal":
        return [f"{indent}- |{comment}", f"{indent}  set -e", f"{indent}  {value}"]
    if style == "folded":
        head, _, tail = value.partition(" -")
        lines = [f"{indent}- >{comment}", f"{indent}  {head}"]
        if tail:
            lines.append(f"{indent}  -{tail}")
        return lines
    # backslash continuation inside a literal block
    parts = value.split(" ")
    return (
        [f"{indent}- |", f"{indent}  {parts[0]} {parts[1]} \\"]
        + [f"{indent}    {p} \\" for p in parts[2:-1]]
        + [f"{indent}    {parts[-1]}"]
    )


@st.composite
def buildspec(draw: st.DrawFn) -> str:
    unit = " " * draw(st.sampled_from([2, 4, 12]))
    seq_indent = draw(st.booleans())
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    env_pos = draw(st.sampled_from(["none", "before", "after"]))
    env_kind = draw(st.sampled_from(["variables", "parameter-store", "both"]))
    comment = draw(st.sampled_from(["", " # note", "\t# tab\tnote"]))
    style = draw(st.sampled_from(["plain", "single", "double", "literal", "folded", "continued"]))
    build = draw(build_command())
    login = draw(st.booleans())
    # Where the region of the login is set, and which phase builds (POST_BUILD also runs after a failed BUILD).
    region = draw(st.sampled_from(["predefined", "pre_build", "before-build", "build-phase"]))
    build_phase = draw(st.sampled_from(["build", "post_build"]))
    region_var = "$AWS_DEFAULT_REGION" if region == "predefined" else "$REGION"
    lines = ["version: 0.2"]
    env = ["env:"]
    if env_kind in ("variables", "both"):
        env += [f"{unit}variables:", f'{unit * 2}IMAGE_REPO_NAME: "shop"']
    if env_kind in ("parameter-store", "both"):
        env += [f"{unit}parameter-store:", f"{unit * 2}TOKEN: /ci/token"]
    if env_pos == "before":
        lines += env
    lines.append("phases:")
    item = unit * 2 + (unit if seq_indent else "")
    login_line = (
        f"{item}- aws ecr get-login-password --region {region_var} | docker login --username AWS "
        f"--password-stdin $AWS_ACCOUNT_ID.dkr.ecr.{region_var}.amazonaws.com"
    )
    if login or region == "pre_build":
        lines += [f"{unit}pre_build:", f"{unit * 2}commands:"]
        lines += [f"{item}- REGION=eu-west-1"] if region == "pre_build" else []
        lines += [f"{item}# log in", login_line] if login and region not in ("before-build", "build-phase") else []
        lines += [f"{item}- echo ready"] if region == "pre_build" and not login else []
    if build_phase == "post_build" or region == "build-phase":
        lines += [f"{unit}build:", f"{unit * 2}commands:", f"{item}- mvn -B verify"]
        # A region (and account id) set only in BUILD: a POST_BUILD build cannot count on them.
        if region == "build-phase":
            lines += [f"{item}- REGION=eu-west-1", f"{item}- AWS_ACCOUNT_ID=123456789012"]
        lines += [login_line] if login and region == "build-phase" else []
        build_phase = "post_build"
    lines += [f"{unit}{build_phase}:", f"{unit * 2}commands:"]
    if region == "before-build":
        lines += [f"{item}- REGION=eu-west-1"] + ([login_line] if login else [])
    lines += _item(item, build, style, comment)
    lines.append(f"{item}- docker push $REPO:latest")
    if env_pos == "after":
        lines += env
    final = draw(st.sampled_from([nl, ""]))
    return nl.join(lines) + final


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(buildspec())
def test_generated_buildspecs_change_exactly_or_say_why(text: str) -> None:
    _, part = plan_text(text, paths=("Dockerfile", "app/Dockerfile", "docker/Dockerfile"))
    if part.edits:
        (edit,) = part.edits
        assert verify_buildspec_edit(text, edit.content) is None
        assert unset_uses(edit.content, text) == []
        nl = "\r\n" if "\r\n" in text else "\n"
        added = edit.content.replace(nl, "\n")
        assert ("\r\n" in text) == ("\r\n" in edit.content)
        assert "\r" not in added.replace("\r\n", "")
        _, again = plan_text(edit.content, paths=("Dockerfile", "app/Dockerfile", "docker/Dockerfile"))
        assert again.edits == ()
    else:
        assert any(f.level == "warning" for f in part.findings), text


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-#|>'\"\\ \n\t{}[],&*!%@`$()=.")), max_size=200))
def test_arbitrary_text_never_raises(noise: str) -> None:
    for text in (noise, "version: 0.2\nphases:\n  build:\n    commands:\n      - docker build " + noise):
        _, part = plan_text(text)
        for edit in part.edits:
            assert verify_buildspec_edit(text, edit.content) is None
