"""The Arabic IVR for 15654: flows as data, the FastAGI server, prompt build, dialplan snippet.

    server = AgiServer(settings, backend); server.start() ... server.stop()
    build_prompts(settings.ivr.sounds_dir, flow=load_flow(settings.ivr.flow_file))
    print(render_asterisk_config(settings))

The casebook is reached only through ``IvrBackend``.
"""

from ivr_flows.backend import IvrBackend, RegisteredComplaint, StatusAnswer
from ivr_flows.dialplan import render_asterisk_config, render_extensions, render_manager
from ivr_flows.flow import Flow, FlowError, load_flow
from ivr_flows.prompts import PromptReport, build_prompts
from ivr_flows.server import AgiServer
from ivr_flows.tts import SpeechError

__all__ = [
    "AgiServer",
    "Flow",
    "FlowError",
    "IvrBackend",
    "PromptReport",
    "RegisteredComplaint",
    "SpeechError",
    "StatusAnswer",
    "build_prompts",
    "load_flow",
    "render_asterisk_config",
    "render_extensions",
    "render_manager",
]
