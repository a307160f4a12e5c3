"""The store's guest Wi-Fi login page and its two calls (``cloud.arrivals.guest_wifi``): public, no
API key, because the phone joining the Wi-Fi has none; the one-time code to the member's phone is
what proves who logs in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import HTMLResponse

from cloud.api.deps import RuntimeDep, valid_id, valid_store
from cloud.api.schemas import Error, GuestBound, GuestCodeIn, GuestLoginIn, GuestLoginStarted
from cloud.arrivals import guest_wifi
from cloud.channels import sms

router = APIRouter(prefix="/wifi/{brand}/{store}", tags=["guest wifi"])

Brand = Annotated[str, Path(description="brand id")]
Store = Annotated[str, Path(description="store id, as in the MQTT topics: the network the address belongs to")]

_PAGE = """<!doctype html><html lang="zh"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>会员 Wi-Fi 登录</title>
<style>body{font:17px sans-serif;max-width:26em;margin:2em auto;padding:0 1em}input,button{font:inherit;
width:100%;margin:.3em 0;padding:.5em}label{display:flex;gap:.5em;align-items:flex-start}label input{width:auto}
#msg{color:#b00}</style>
<h1>会员 Wi-Fi 登录</h1>
<p>输入会员手机号，我们会发送验证码。</p>
<input id="phone" type="tel" placeholder="手机号" autocomplete="tel"><button id="send">获取验证码</button>
<input id="code" inputmode="numeric" placeholder="验证码">
<label><input id="consent" type="checkbox"><span>我同意本店在我连接店内 Wi-Fi 时识别这部手机，
用于到店会员服务；可随时在会员中心撤回。</span></label>
<button id="bind">登录并绑定</button><p id="msg"></p>
<script>
const mac = __MAC__, base = location.pathname; let login = null;
const say = t => document.getElementById("msg").textContent = t;
const post = (url, body) => fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
  body: JSON.stringify(body)}).then(async r => ({ok: r.ok, body: await r.json()}));
document.getElementById("send").onclick = async () => {
  const r = await post(base, {mac, phone: document.getElementById("phone").value});
  if (r.ok) { login = r.body.login_id; say("验证码已发送"); } else say(r.body.detail.message); };
document.getElementById("bind").onclick = async () => {
  if (!login) return say("请先获取验证码");
  const r = await post(base + "/" + login, {code: document.getElementById("code").value,
    consent: document.getElementById("consent").checked});
  say(r.ok ? "已绑定，欢迎光临！" : r.body.detail.message); };
</script></html>"""


@router.get("/login", response_class=HTMLResponse)
def login_page(brand: Brand, store: Store, mac: Annotated[str, Query(max_length=32)]) -> str:
    """What the captive portal redirects a joining phone to, with the client's address in ``mac``."""
    valid_id("brand", brand)
    valid_store(store)
    return _PAGE.replace("__MAC__", _js_string(mac))


def _js_string(text: str) -> str:
    """A MAC-shaped value as a JavaScript string literal; anything else becomes an empty one."""
    return f'"{text}"' if all(c.isalnum() or c in ":-." for c in text) else '""'


@router.post("/login", status_code=status.HTTP_201_CREATED, response_model=GuestLoginStarted,
             responses={404: {"model": Error}, 409: {"model": Error, "description": "no brand Wi-Fi secret configured"},
                        422: {"model": Error}, 429: {"model": Error}, 503: {"model": Error}})
def start_login(brand: Brand, store: Store, body: GuestLoginIn, runtime: RuntimeDep) -> GuestLoginStarted:
    """Texts a one-time code to the member with this phone number."""
    settings = runtime.settings
    valid_id("brand", brand)
    pending = guest_wifi.start(runtime.db, store=valid_store(store), mac=body.mac, phone=body.phone,
                               secret=settings.wifi_secret(), sms=sms.from_settings(settings),
                               template=settings.sms_otp_template)
    return GuestLoginStarted(login_id=pending.id, expires=pending.expires)


@router.post("/login/{login_id}", response_model=GuestBound,
             responses={404: {"model": Error}, 409: {"model": Error}, 422: {"model": Error}})
def confirm_login(brand: Brand, store: Store, login_id: str, body: GuestCodeIn, runtime: RuntimeDep) -> GuestBound:
    """The code and the consent: the phone's address on this store's network is the member's."""
    valid_id("brand", brand)
    made = guest_wifi.confirm(runtime.db, valid_store(store), login_id, body.code, consent=body.consent)
    return GuestBound(device_key=made.device_key, created=made.created)
