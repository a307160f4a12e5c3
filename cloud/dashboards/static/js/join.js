// The join page (入会) on a customer's phone: the invitation token is the URL's fragment.
const token = location.hash.slice(1);
const base = `../v1/join/${encodeURIComponent(token)}`;
const $ = (id) => document.getElementById(id);
let verificationId = null;

const FACE_TEXT = {
  pending: "人脸登记中…",
  enrolled: "人脸已登记：下次到店导购会认出您。",
  refused: "这次未能登记人脸；出示会员码即可享受同样服务。",
};

async function call(path, body) {
  const response = await fetch(base + path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (data.detail && data.detail.message) || data.message || `请求失败 (${response.status})`;
    throw new Error(message);
  }
  return data;
}

function problem(text) {
  $("problem").textContent = text;
  $("problem").hidden = !text;
}

function state(name) {
  $("join").dataset.state = name;
}

function ready() {
  const phoneOk = /^1\d{10}$/.test($("phone").value.trim());
  $("send-code").disabled = !($("membership").checked && phoneOk && $("name").value.trim());
  $("confirm").disabled = !(verificationId && /^\d{6}$/.test($("code").value.trim()));
}

function showJoined(joined) {
  $("ask").hidden = true;
  $("done").hidden = false;
  $("card-no").textContent = joined.member_card || "";
  $("member-qr").src = `${base}/member-qr.png`;
  $("face-status").textContent = joined.face ? FACE_TEXT[joined.face] : "未开启人脸识别。";
  state(joined.face === "pending" ? "joined-face-pending" : "joined");
  if (joined.face === "pending") {
    setTimeout(async () => showJoined(await call("")), 1000);
  }
}

async function sendCode() {
  problem("");
  try {
    const pending = await call("/code", { membership: true, name: $("name").value.trim(), phone: $("phone").value.trim() });
    verificationId = pending.id;
    $("verify").hidden = false;
    $("send-code").textContent = "重新获取验证码";
    state("code-sent");
  } catch (error) {
    problem(error.message);
  }
  ready();
}

async function confirm(event) {
  event.preventDefault();
  problem("");
  const marketing = {};
  for (const box of document.querySelectorAll("input[name=marketing]")) {
    marketing[box.value] = box.checked;
  }
  try {
    showJoined(await call("/confirm", {
      verification_id: verificationId, code: $("code").value.trim(), face: $("face").checked, marketing,
    }));
  } catch (error) {
    problem(error.message);
  }
}

async function start() {
  for (const id of ["membership", "name", "phone", "code"]) {
    $(id).addEventListener("input", ready);
  }
  $("send-code").addEventListener("click", sendCode);
  $("ask").addEventListener("submit", confirm);
  if (!token) {
    problem("请用手机扫描导购屏上的二维码打开本页。");
    state("invalid");
    return;
  }
  try {
    const invitation = await call("");
    $("store").textContent = `门店 ${invitation.store}`;
    if (invitation.status === "joined") {
      showJoined(invitation);
    } else if (invitation.status !== "open") {
      problem("二维码已过期，请让店员重新生成。");
      state("expired");
    } else {
      $("ask").hidden = false;
      state("open");
    }
  } catch (error) {
    problem(error.message);
    state("invalid");
  }
}

start();
