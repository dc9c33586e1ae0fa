// The Probot 14 side of bench/intake.py: the same routing decision as bot/app/events.py for the benchmark's
// mix (default-branch pushes touching a Dockerfile/buildspec, `/ecr-cache` comments), answered without a queue.
// Probot verifies X-Hub-Signature-256 with WEBHOOK_SECRET before any handler runs.
const RELEVANT = /(^|\/)(Dockerfile[^/]*|[^/]*\.dockerfile|buildspec[^/]*\.ya?ml|\.ecr-cache\.ya?ml)$/i;

function changedPaths(payload) {
  const commits = [...(payload.commits || []), ...(payload.head_commit ? [payload.head_commit] : [])];
  return commits.flatMap((c) => [...(c.added || []), ...(c.modified || []), ...(c.removed || [])]);
}

export default (app) => {
  app.on("push", async (context) => {
    const { payload } = context;
    if (payload.ref !== `refs/heads/${payload.repository.default_branch}` || payload.deleted) return;
    if (!changedPaths(payload).some((path) => RELEVANT.test(path))) return;
    context.log.info({ repo: payload.repository.full_name, after: payload.after }, "relevant push");
  });
  app.on("issue_comment.created", async (context) => {
    const body = context.payload.comment.body || "";
    if (!/^\/ecr-cache\b/.test(body.trim())) return;
    context.log.info({ repo: context.payload.repository.full_name }, "command");
  });
};
