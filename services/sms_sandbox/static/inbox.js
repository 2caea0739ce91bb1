// Reloads when the set of conversations changes, unless someone is typing.
const stamp = document.body.dataset.stamp;
setInterval(async () => {
  const typing = [...document.querySelectorAll("textarea, input:not([type=hidden])")].some((field) => field.value);
  if (typing || document.hidden) return;
  try {
    const { phones } = await (await fetch("/sandbox/api/phones", { cache: "no-store" })).json();
    if (phones.map((p) => `${p.phone}:${p.message_count}`).join(",") !== stamp) location.reload();
  } catch (error) { /* the sandbox is restarting; try again next tick */ }
}, 3000);
if (!location.hash) document.querySelector(".conversation li:last-child")?.scrollIntoView({ block: "end" });
