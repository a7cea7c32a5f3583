"""A private PulseAudio server with a virtual speaker and microphone, for tests on machines with no sound card.

Devices: sink 'spk' (the speaker, 48 kHz; what it played is recorded from 'spk.monitor'), sink 'micfeed' (16 kHz;
audio played into it is what the microphone hears) and source 'vmic' (the microphone). 'spk' and 'vmic' are the
server's defaults, so PortAudio's 'default' and 'pulse' ALSA devices reach them.

PortAudio's ALSA 'pulse' plugin finds the server through the environment when PortAudio initializes: without a
server PortAudio lists no device at all here. `VirtualAudio.start()` therefore sets the environment of this process
and then re-initializes PortAudio if sounddevice is already imported.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from voicecoach.audio.speaker import PlayedBuffer
from voicecoach.audio.wavfile import read_wav

_LOGGER = logging.getLogger(__name__)

SPEAKER_RATE = 48000
MIC_FEED_RATE = 16000
_ENV_NAMES = ("XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "PULSE_SERVER")
_WARM_UP_S = 2.0
"""An idle null sink renders in 2 s blocks; capture timing is reliable only after this."""
_READY_TIMEOUT_S = 5.0
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
"""Prefix for children that must not outlive this process (util-linux's setpriv)."""


class VirtualAudioError(RuntimeError):
    """The virtual audio server could not be started."""


def missing_tools() -> list[str]:
    """The PulseAudio programs this helper needs that are not installed."""
    return [tool for tool in ("pulseaudio", "pactl", "pacat", "parecord", "paplay") if shutil.which(tool) is None]


class SpeakerRecording:
    """A parecord process recording 'spk.monitor' into a WAV file until stop()."""

    def __init__(self, path: Path, latency_ms: int = 10) -> None:
        self.path = path
        self._process = subprocess.Popen(
            [*_DIE_WITH_PARENT, "parecord", "--device=spk.monitor", f"--latency-msec={latency_ms}", "--file-format=wav",
             f"--rate={SPEAKER_RATE}", "--channels=1", "--format=s16le", str(path)],
            stderr=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> Path:
        """Stop recording; return the WAV file."""
        self._process.send_signal(signal.SIGINT)
        _, stderr = self._process.communicate(timeout=10)
        if not self.path.exists():
            raise VirtualAudioError(f"parecord wrote nothing: {stderr.decode(errors='replace').strip()}")
        return self.path

    def stop_and_read(self) -> tuple[np.ndarray, int]:
        """Stop recording; return the int16 samples and their rate."""
        return read_wav(self.stop())


class MonitorCapture:
    """Records the speaker (spk.monitor) in this process through PortAudio, with each block's ADC time.

    Unlike a parecord recording, its samples carry time.monotonic() times of their own, independent of the speaker's
    playback log. The ALSA pulse plugin takes its source from PULSE_SOURCE when the stream opens.
    """

    def __init__(self, block_frames: int = 240) -> None:
        import sounddevice as sd

        self._blocks: list[tuple[float, bytes]] = []
        saved = os.environ.get("PULSE_SOURCE")
        os.environ["PULSE_SOURCE"] = "spk.monitor"
        try:
            self._stream = sd.RawInputStream(
                samplerate=SPEAKER_RATE, blocksize=block_frames, device="pulse", channels=1, dtype="int16",
                latency="low", callback=self._callback,
            )  # fmt: skip
        finally:
            if saved is None:
                os.environ.pop("PULSE_SOURCE", None)
            else:
                os.environ["PULSE_SOURCE"] = saved
        self._stream.start()

    def stop(self) -> tuple[np.ndarray, int, float]:
        """Stop; return the samples, their rate and the time.monotonic() of the first one."""
        self._stream.abort()
        self._stream.close()
        samples = np.frombuffer(b"".join(pcm for _, pcm in self._blocks), dtype="<i2").astype(np.int16)
        offsets = np.cumsum([0] + [len(pcm) // 2 for _, pcm in self._blocks[:-1]]) / SPEAKER_RATE
        start_s = float(np.median([adc_s for adc_s, _ in self._blocks] - offsets))  # robust to a late block
        return samples, SPEAKER_RATE, start_s

    def _callback(self, indata: object, frames: int, time_info: object, status: object) -> None:
        """PortAudio thread: keep the block and its ADC time on the monotonic clock."""
        adc_s, now_s = time_info.inputBufferAdcTime, time_info.currentTime  # type: ignore[attr-defined]
        self._blocks.append((time.monotonic() + (adc_s - now_s), bytes(indata)))  # type: ignore[call-overload]


class VirtualAudio:
    """Start and stop the private server in a folder; record the speaker and feed the microphone."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runtime_dir = root / "run"
        self.config_dir = root / "config"
        self._server: subprocess.Popen[bytes] | None = None
        self._keepalives: list[subprocess.Popen[bytes]] = []
        self._saved_env: dict[str, str | None] = {}
        self._recordings = 0

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point clients at this server."""
        return {
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "XDG_CONFIG_HOME": str(self.config_dir),
            "PULSE_SERVER": f"unix:{self.runtime_dir}/pulse/native",
        }

    def start(self, warm_up_s: float = _WARM_UP_S) -> None:
        """Start the server with its devices, point this process at it, and warm it up."""
        missing = missing_tools()
        if missing:
            raise VirtualAudioError(f"missing {', '.join(missing)} (apt-get install pulseaudio pulseaudio-utils)")
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o700)
        self._saved_env = {name: os.environ.get(name) for name in _ENV_NAMES}
        os.environ.update(self.env)
        try:
            self._start_server()
            self._wait_ready()
            self._pactl("set-default-sink", "spk")
            self._pactl("set-default-source", "vmic")
            self._keepalives = [_keep_alive("micfeed", MIC_FEED_RATE), _keep_alive("spk", SPEAKER_RATE)]
        except BaseException:
            self.stop()
            raise
        reinitialize_portaudio()
        time.sleep(warm_up_s)

    def stop(self) -> None:
        """Stop what start() started, by pid, and restore the environment."""
        for process in self._keepalives:
            process.terminate()
            process.wait(timeout=5)
        self._keepalives = []
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _LOGGER.warning("pulseaudio %d ignored SIGTERM; killing it", self._server.pid)
                self._server.kill()
                self._server.wait(timeout=5)
            self._server = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reinitialize_portaudio()

    def start_recording(self, name: str = "speaker") -> SpeakerRecording:
        """Start recording what the speaker plays (spk.monitor); stop() the result to get the samples."""
        self._recordings += 1
        recording = SpeakerRecording(self.root / f"{name}-{self._recordings}.wav")
        time.sleep(0.3)  # parecord connects asynchronously: let it start before the sound does
        return recording

    def record_speaker(self, seconds: float) -> Path:
        """Record the speaker for this many seconds (blocking); return the WAV file."""
        recording = self.start_recording()
        time.sleep(seconds)
        return recording.stop()

    def play_into_mic(self, wav_path: Path, wait: bool = True) -> subprocess.Popen[bytes]:
        """Play a WAV file into 'micfeed' so that the microphone 'vmic' hears it."""
        process = subprocess.Popen(["paplay", "--device=micfeed", str(wav_path)])
        if wait:
            process.wait(timeout=60)
        return process

    def log_text(self) -> str:
        """The server's log."""
        log = self.root / "pulse.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def _start_server(self) -> None:
        """Run pulseaudio with the virtual devices (the recipe in shared/audio), as a child of this process.

        Unlike the recipe it does not daemonize: a test run that is killed would leave a daemon behind for good
        (it never exits when idle), while a child started through `setpriv --pdeathsig` dies with this process.
        """
        command = [
            "pulseaudio", "--daemonize=no", "--system=false", "--exit-idle-time=-1", "-n",
            "--disable-shm=yes",  # without it PulseAudio 16 aborted now and then (memblock.c assertion)
            f"--log-target=file:{self.root / 'pulse.log'}", "--log-level=notice",
            "--load=module-native-protocol-unix auth-anonymous=1",
            f"--load=module-null-sink sink_name=spk rate={SPEAKER_RATE} channels=1 "
            "sink_properties=device.description=VirtualSpeaker",
            f"--load=module-null-sink sink_name=micfeed rate={MIC_FEED_RATE} channels=1 "
            "sink_properties=device.description=MicFeed",
            "--load=module-remap-source master=micfeed.monitor source_name=vmic "
            "source_properties=device.description=VirtualMic",
        ]  # fmt: skip
        self._server = subprocess.Popen([*_DIE_WITH_PARENT, *command], stdin=subprocess.DEVNULL)

    def _wait_ready(self) -> None:
        """Wait until the server answers."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._server is not None and self._server.poll() is not None:
                raise VirtualAudioError(f"pulseaudio exited with status {self._server.returncode}: {self.log_text()}")
            if subprocess.run(["pactl", "info"], capture_output=True).returncode == 0:
                return
            time.sleep(0.01)
        raise VirtualAudioError(f"pulseaudio did not answer within {_READY_TIMEOUT_S} s: {self.log_text()}")

    def _pactl(self, *args: str) -> None:
        """Run one pactl command."""
        subprocess.run(["pactl", *args], check=True, capture_output=True, timeout=10)


def _keep_alive(sink: str, rate: int) -> subprocess.Popen[bytes]:
    """Stream silence into a sink forever.

    An idle null sink renders ahead in 2 s blocks; a stream that connects then waits until the sink catches up
    (paplay of 1 s took 2 s; PortAudio's callbacks stalled). A steady stream of silence makes the null sink pace
    itself like a sound card.
    """
    return subprocess.Popen(
        [*_DIE_WITH_PARENT, "pacat", "--playback", "-d", sink, "--latency-msec=20", "--raw", "--format=s16le",
         f"--rate={rate}", "--channels=1", "/dev/zero"],
    )  # fmt: skip


def reinitialize_portaudio() -> None:
    """Make an already imported sounddevice see the current environment (PortAudio reads it at init)."""
    sd = sys.modules.get("sounddevice")
    if sd is None:
        return
    sd._terminate()
    sd._initialize()


# --- reading recordings ---------------------------------------------------------------------------


def first_loud(samples: np.ndarray, threshold: int, start: int = 0, stop: int | None = None) -> int | None:
    """Index of the first sample in [start, stop) whose magnitude exceeds threshold."""
    found = np.flatnonzero(np.abs(samples[start:stop].astype(np.int32)) > threshold)
    return None if found.size == 0 else start + int(found[0])


def last_loud(samples: np.ndarray, threshold: int, start: int = 0, stop: int | None = None) -> int | None:
    """Index of the last sample in [start, stop) whose magnitude exceeds threshold."""
    found = np.flatnonzero(np.abs(samples[start:stop].astype(np.int32)) > threshold)
    return None if found.size == 0 else start + int(found[-1])


def recording_start_s(
    recording: np.ndarray, rate: int, played: PlayedBuffer, threshold: int, search_from: int = 0
) -> float:
    """time.monotonic() of the recording's first sample, matching the played buffer's first loud sample.

    Relies on the speaker's DAC start time (checked against an in-process capture of spk.monitor: within 2 to 6 ms).
    """
    if rate != played.sample_rate:
        raise ValueError(f"record at the speaker's rate ({played.sample_rate} Hz), not {rate} Hz")
    in_buffer = first_loud(played.samples, threshold)
    in_recording = first_loud(recording, threshold, search_from)
    if in_buffer is None or in_recording is None:
        raise AssertionError("the played buffer is not in the recording")
    return played.start_s + (in_buffer - in_recording) / rate


def peak_frequency_hz(samples: np.ndarray, rate: int) -> float:
    """The frequency with the most energy."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1.0 / rate)[int(np.argmax(spectrum))])


def rms(samples: np.ndarray) -> float:
    """Root mean square, in sample units."""
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0
