// Read a UI message chunk stream to the end with the SDK's own readUIMessageStream: the chunk
// types seen, the final UIMessage, its text and the errors reported. With `after` and `act`,
// `act()` runs once `after` text deltas have arrived (abort the request, close the transport).
export async function readAll(stream, readUIMessageStream, { after = null, act = null } = {}) {
  const [forTypes, forMessage] = stream.tee();
  const types = [];
  const errors = [];
  const typesDone = (async () => {
    const reader = forTypes.getReader();
    let texts = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        types.push(value.type);
        if (value.type === "text-delta" && after != null && ++texts >= after) {
          act();
          break;
        }
      }
    } catch (error) {
      errors.push(`chunks: ${error.message ?? error}`);
    }
  })();
  let message = null;
  try {
    for await (const snapshot of readUIMessageStream({
      stream: forMessage,
      onError: (error) => errors.push(error.message ?? String(error)),
    })) {
      message = snapshot;
    }
  } catch (error) {
    errors.push(`stream: ${error.message ?? error}`);
  }
  await typesDone;
  const text = message ? message.parts.filter((p) => p.type === "text").map((p) => p.text).join("") : null;
  return { types, errors, message, text };
}
