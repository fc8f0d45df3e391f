// The web caller: one call to a running worker through the LiveKit JavaScript client.
// The server (python -m agent web) dispatches the agent and mints this page's token; the
// page joins, publishes the microphone, plays the agent and shows the transcript with,
// per agent turn, the providers that served it, the failovers, and the voice-to-voice
// measured here. window.voiceAgent exposes the same for tests and the bench.
"use strict";

const LK = window.LivekitClient;
const SPEECH_LEVEL = 0.02; // RMS (full scale 1) above which a 20 ms block carries speech
const ONSET_GAP_MS = 400; // agent silence before new agent audio counts as a new reply
const RECORD_LIMIT_S = 300; // the agent's audio kept for the download, at most
const POLL_MS = 20;

const $ = (id) => document.getElementById(id);

const STATES = {
  idle: ["idle", "Ready", "Press Call and allow the microphone."],
  mic: ["busy", "Microphone", "Waiting for the browser's microphone permission…"],
  dispatching: ["busy", "Calling", "Dispatching the agent…"],
  joining: ["busy", "Calling", "Joined the room; waiting for the agent…"],
  "in-call": ["ok", "In call", "Speak: the agent is listening."],
  ended: ["idle", "Call ended", ""],
  "no-server": ["error", "No LiveKit server", ""],
  "no-agent": ["error", "No worker answered", ""],
  refused: ["error", "Call refused", ""],
  "mic-denied": ["error", "Microphone denied", ""],
  "bad-request": ["error", "Not an organization id", ""],
  "dispatch-failed": ["error", "Dispatch failed", ""],
  failed: ["error", "Call failed", ""],
};

const va = (window.voiceAgent = {
  state: "idle",
  error: null,
  room: null,
  turns: [], // {role, text, final, openedAt, info, v2v}
  measurements: [], // {callerEndAt, agentOnsetAt, seconds}
  receivedSpeechSeconds: 0,
  agentAudio: null, // () => {rate, samples: base64 int16}
});

let config = null;
let call = null; // the current call's objects

function setState(name, detail) {
  const [kind, title, text] = STATES[name];
  va.state = name;
  va.error = kind === "error" ? detail || null : null;
  const box = $("state");
  box.className = `state ${kind}`;
  box.dataset.state = name;
  $("state-title").textContent = title;
  $("state-detail").textContent = detail || text;
  const busy = ["mic", "dispatching", "joining", "in-call"].includes(name);
  $("call").disabled = busy;
  $("hangup").disabled = !busy || name === "mic";
  $("org").disabled = busy;
}

async function post(path, body) {
  const resp = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try {
    data = await resp.json();
  } catch (e) {
    data = { state: "failed", error: `the page's server answered HTTP ${resp.status}` };
  }
  return { ok: resp.ok, data };
}

// ------------------------------------------------------------------ levels and v2v

function rmsOf(analyser, buffer) {
  analyser.getFloatTimeDomainData(buffer);
  let sum = 0;
  for (let i = 0; i < buffer.length; i++) sum += buffer[i] * buffer[i];
  return Math.sqrt(sum / buffer.length);
}

class Levels {
  // Polls the microphone's and the agent's levels: the caller's last speech, the agent's
  // onsets, hence voice to voice (caller's last loud block → agent's first loud block).
  constructor(ctx) {
    this.ctx = ctx;
    this.mic = null;
    this.agent = null;
    this.buffer = new Float32Array(1024);
    this.lastMicSpeech = null;
    this.lastAgentSpeech = null;
    this.callerSpokeSinceOnset = false;
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  analyser(stream) {
    const a = this.ctx.createAnalyser();
    a.fftSize = 1024;
    this.ctx.createMediaStreamSource(stream).connect(a);
    return a;
  }

  poll() {
    const now = performance.now();
    if (this.mic) {
      const level = rmsOf(this.mic, this.buffer);
      $("mic-level").value = Math.min(1, level * 5);
      if (level > SPEECH_LEVEL) {
        this.lastMicSpeech = now;
        this.callerSpokeSinceOnset = true;
      }
    }
    if (this.agent) {
      const level = rmsOf(this.agent, this.buffer);
      $("agent-level").value = Math.min(1, level * 5);
      if (level > SPEECH_LEVEL) {
        const gap = this.lastAgentSpeech === null || now - this.lastAgentSpeech > ONSET_GAP_MS;
        if (gap && this.callerSpokeSinceOnset && this.lastMicSpeech !== null) {
          const seconds = (now - this.lastMicSpeech) / 1000;
          va.measurements.push({ callerEndAt: this.lastMicSpeech, agentOnsetAt: now, seconds });
          this.callerSpokeSinceOnset = false;
          render();
        }
        this.lastAgentSpeech = now;
        va.receivedSpeechSeconds += POLL_MS / 1000;
      }
    }
  }

  stop() {
    clearInterval(this.timer);
  }
}

class Recorder {
  // The agent's audio as received, for the download (and the browser test's check).
  constructor(ctx, stream) {
    this.rate = ctx.sampleRate;
    this.chunks = [];
    this.length = 0;
    const source = ctx.createMediaStreamSource(stream);
    this.node = ctx.createScriptProcessor(4096, 1, 1);
    this.node.onaudioprocess = (ev) => {
      if (this.length >= RECORD_LIMIT_S * this.rate) return;
      const data = ev.inputBuffer.getChannelData(0);
      this.chunks.push(new Float32Array(data));
      this.length += data.length;
    };
    source.connect(this.node);
    const mute = ctx.createGain();
    mute.gain.value = 0;
    this.node.connect(mute).connect(ctx.destination); // a processor runs only when connected
  }

  int16() {
    const out = new Int16Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      for (let i = 0; i < chunk.length; i++) {
        out[at++] = Math.max(-32768, Math.min(32767, Math.round(chunk[i] * 32767)));
      }
    }
    return out;
  }

  wav() {
    const pcm = this.int16();
    const header = new DataView(new ArrayBuffer(44));
    const text = (at, s) => [...s].forEach((c, i) => header.setUint8(at + i, c.charCodeAt(0)));
    text(0, "RIFF");
    header.setUint32(4, 36 + pcm.byteLength, true);
    text(8, "WAVEfmt ");
    header.setUint32(16, 16, true);
    header.setUint16(20, 1, true);
    header.setUint16(22, 1, true);
    header.setUint32(24, this.rate, true);
    header.setUint32(28, this.rate * 2, true);
    header.setUint16(32, 2, true);
    header.setUint16(34, 16, true);
    text(36, "data");
    header.setUint32(40, pcm.byteLength, true);
    return new Blob([header, pcm.buffer], { type: "audio/wav" });
  }

  stop() {
    this.node.onaudioprocess = null;
  }
}

function base64(int16) {
  const bytes = new Uint8Array(int16.buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

// ------------------------------------------------------------------ transcript

function segmentTurn(id, role) {
  let turn = va.turns.find((t) => t.id === id);
  if (!turn) {
    turn = { id, role, text: "", final: role === "assistant", openedAt: performance.now(), info: null };
    va.turns.push(turn);
  }
  return turn;
}

async function onTranscription(reader, participant) {
  const p = config.protocol;
  const attrs = reader.info.attributes || {};
  const agent = call && call.agent && participant.identity === call.agent.identity;
  const turn = segmentTurn(attrs[p.segmentIdAttribute] || reader.info.id, agent ? "assistant" : "user");
  let text = "";
  for await (const chunk of reader) {
    text += chunk;
    turn.text = text; // each stream of a segment carries its whole text so far
    render();
  }
  if (!agent) turn.final = attrs[p.finalAttribute] === "true";
  render();
}

async function onTurnInfo(reader) {
  // one message per finished turn: which providers served it, failovers since the last
  let info;
  try {
    info = JSON.parse(await reader.readAll());
  } catch (e) {
    return;
  }
  if (!info.text) return;
  const candidates = va.turns.filter((t) => t.role === info.role && t.text.trim() && !t.info);
  const turn = candidates[0];
  if (turn) turn.info = info;
  else va.turns.push({ id: `info-${va.turns.length}`, role: info.role, text: info.text, final: true, openedAt: performance.now(), info });
  render();
}

function v2vOf(turn, used) {
  // the measurement whose agent onset is nearest this reply's start, within 3 s
  let best = null;
  for (const m of va.measurements) {
    if (used.has(m)) continue;
    const d = Math.abs(m.agentOnsetAt - turn.openedAt);
    if (d < 3000 && (!best || d < Math.abs(best.agentOnsetAt - turn.openedAt))) best = m;
  }
  if (best) used.add(best);
  return best;
}

function chip(text, cls) {
  const el = document.createElement("span");
  el.className = `chip ${cls || ""}`;
  el.textContent = text;
  return el;
}

function render() {
  const list = $("transcript");
  list.textContent = "";
  const used = new Set();
  const shown = va.turns.filter((t) => t.text.trim()).sort((a, b) => a.openedAt - b.openedAt);
  for (const turn of shown) {
    const li = document.createElement("li");
    li.className = `turn ${turn.role}${turn.final ? "" : " interim"}`;
    li.dataset.role = turn.role;
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = turn.role === "assistant" ? "agent" : "you";
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = turn.text.trim() + (turn.info && turn.info.interrupted ? " [interrupted]" : "");
    li.append(who, text);
    const served = document.createElement("div");
    served.className = "served";
    if (turn.role === "assistant") {
      const m = v2vOf(turn, used);
      turn.v2v = m ? m.seconds : null;
      if (m) served.append(chip(`voice to voice ${m.seconds.toFixed(2)} s`, "v2v"));
    }
    if (turn.info) {
      const pr = turn.info.providers || {};
      for (const kind of ["stt", "llm", "tts"]) {
        if (pr[kind]) served.append(chip(`${kind.toUpperCase()} ${pr[kind]}`, `provider ${kind}`));
      }
      if (turn.info.scripted) served.append(chip("greeting, no LLM", "scripted"));
      if (turn.info.latency && turn.info.latency.e2e !== undefined) {
        served.append(chip(`agent-side ${turn.info.latency.e2e.toFixed(2)} s`, "e2e"));
      }
    }
    if (served.childNodes.length) li.append(served);
    for (const f of (turn.info && turn.info.failovers) || []) {
      const line = document.createElement("div");
      line.className = "failover";
      line.textContent = `failover: ${f.kind.toUpperCase()} ${f.from} → ${f.to || "nobody left"} (${f.error})`;
      li.append(line);
    }
    list.append(li);
  }
}

// ------------------------------------------------------------------ the call

function isAgent(p) {
  return p.isAgent || p.kind === LK.ParticipantKind.AGENT;
}

function checkRefusal(p) {
  const error = p.attributes && p.attributes[config.protocol.callErrorAttribute];
  if (!error || !call || call.refused) return;
  call.refused = true;
  const code = error.replace(/^call refused \((.*)\)$/, "$1");
  setState("refused", `The agent refused the call (${code}); the worker's log says why.`);
  hangUp(false);
}

function noteAgent(p) {
  if (!isAgent(p) || !call || call.agent) return;
  call.agent = p;
  checkRefusal(p);
}

async function startCall() {
  va.turns = [];
  va.measurements = [];
  va.receivedSpeechSeconds = 0;
  render();
  setState("mic");
  let mic;
  try {
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (e) {
    const why = e && e.name === "NotAllowedError"
      ? "The browser refused the microphone: allow it for this page (the icon in the address bar) and call again."
      : `No microphone could be opened (${(e && e.name) || e}).`;
    setState("mic-denied", why);
    return;
  }
  const ctx = new AudioContext();
  await ctx.resume();
  const levels = new Levels(ctx);
  levels.mic = levels.analyser(mic);
  call = { mic, ctx, levels, recorder: null, agent: null, refused: false, room: null, name: null };

  setState("dispatching");
  const org = $("org").value.trim();
  const { ok, data } = await post("/api/calls", { org });
  if (!ok) {
    setState(STATES[data.state] ? data.state : "failed", data.error);
    cleanUp();
    return;
  }
  call.name = data.room;
  va.room = data.room;

  const room = new LK.Room({ adaptiveStream: false, dynacast: false });
  call.room = room;
  const p = config.protocol;
  room.registerTextStreamHandler(p.transcriptionTopic, onTranscription);
  room.registerTextStreamHandler(p.turnTopic, onTurnInfo);
  room.on(LK.RoomEvent.ParticipantConnected, noteAgent);
  room.on(LK.RoomEvent.ParticipantAttributesChanged, (_changed, part) => {
    if (call && part === call.agent) {
      checkRefusal(part);
      $("agent-state").textContent = part.attributes[p.agentStateAttribute] || "";
    }
  });
  room.on(LK.RoomEvent.TrackSubscribed, (track, _pub, part) => {
    if (track.kind !== "audio" || !isAgent(part) || !call) return;
    noteAgent(part);
    const el = track.attach();
    el.id = "agent-audio";
    document.body.append(el);
    const stream = new MediaStream([track.mediaStreamTrack]);
    call.levels.agent = call.levels.analyser(stream);
    call.recorder = new Recorder(call.ctx, stream);
    va.agentAudio = () => ({ rate: call.recorder.rate, samples: base64(call.recorder.int16()) });
    lastRecorder = call.recorder;
    $("download").disabled = false;
    if (va.state === "joining") setState("in-call");
  });
  room.on(LK.RoomEvent.ParticipantDisconnected, (part) => {
    if (call && part === call.agent && !call.refused) {
      setState("ended", "The agent left the call.");
      hangUp(false);
    }
  });
  room.on(LK.RoomEvent.Disconnected, () => {
    if (call && call.room === room && va.state === "in-call") {
      setState("ended", "Disconnected from the LiveKit server.");
      cleanUp();
    }
  });

  try {
    await room.connect(data.url, data.token);
    await room.localParticipant.publishTrack(mic.getAudioTracks()[0], {
      source: LK.Track.Source.Microphone,
    });
  } catch (e) {
    setState("failed", `Could not join room ${data.room} at ${data.url}: ${(e && e.message) || e}`);
    hangUp(true);
    return;
  }
  for (const part of room.remoteParticipants.values()) noteAgent(part);
  // an agent already in the room may have sent its audio while we connected
  if (va.state === "dispatching") setState(call.recorder ? "in-call" : "joining");
  const thisCall = call;
  setTimeout(async () => {
    if (call !== thisCall || va.state !== "joining") return;
    const why = await post(`/api/calls/${encodeURIComponent(thisCall.name)}/why`);
    if (call !== thisCall || va.state !== "joining") return;
    setState("no-agent", why.data.error);
    hangUp(true);
  }, config.joinTimeout * 1000);
}

let lastRecorder = null;

function cleanUp() {
  if (!call) return;
  const c = call;
  call = null;
  c.levels.stop();
  if (c.recorder) c.recorder.stop();
  c.mic.getTracks().forEach((t) => t.stop());
  if (c.room) c.room.disconnect();
  const el = $("agent-audio");
  if (el) el.remove();
  if (c.name) post(`/api/calls/${encodeURIComponent(c.name)}/end`);
}

function hangUp(userEnded) {
  if (userEnded && call && !va.error) setState("ended");
  cleanUp();
}

async function main() {
  $("client-version").textContent = LK.version || "";
  const resp = await fetch("/api/config");
  config = await resp.json();
  $("livekit-url").textContent = config.livekitUrl;
  $("agent-name").textContent = config.agentName || "(automatic dispatch)";
  $("org").value = config.defaultOrg || "";
  $("call").addEventListener("click", () => startCall().catch((e) => {
    setState("failed", String((e && e.message) || e));
    cleanUp();
  }));
  $("hangup").addEventListener("click", () => hangUp(true));
  $("download").addEventListener("click", () => {
    if (!lastRecorder) return;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(lastRecorder.wav());
    a.download = "agent.wav";
    a.click();
  });
  setState("idle");
}

main();
