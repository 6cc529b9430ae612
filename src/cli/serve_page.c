/* `hidream serve`: the web page at / — one self-contained HTML file (no external assets, no
 * CDN): prompt and settings, reference pictures drawn into the layout boxes the user drags on a
 * canvas (one box per picture, in order), a progress
 * bar with live previews (the job's event stream), cancel, and a history of results with their
 * recipes, downloads and "regenerate". It talks only to the native job API. */
#include <stdlib.h>
#include <string.h>

#include "cli/serve.h"

static const char PAGE[] =
"<!doctype html><html lang=en><head><meta charset=utf-8>"
"<meta name=viewport content='width=device-width,initial-scale=1'><title>hidream.c</title><style>"
"body{font:14px system-ui,sans-serif;margin:0;background:#15171a;color:#e8e8e8}"
"header{padding:10px 16px;background:#23262b;font-weight:600}main{display:flex;gap:16px;padding:16px;flex-wrap:wrap}"
"section{background:#1d2024;border-radius:8px;padding:12px}#form{width:340px}#out{flex:1;min-width:320px}"
"label{display:block;margin:6px 0 2px;color:#aab}input,select,textarea,button{font:inherit;background:#2a2e34;color:#eee;"
"border:1px solid #3a3f46;border-radius:5px;padding:5px;box-sizing:border-box}textarea,#form input[type=text]{width:100%}"
".row{display:flex;gap:6px}.row>*{flex:1;min-width:0}.row input,.row select{width:100%}button{cursor:pointer;padding:7px 12px}button.go{background:#3763d6;border:0}"
"#bar{height:10px;background:#2a2e34;border-radius:5px;overflow:hidden;margin:8px 0}#fill{height:100%;width:0;background:#3fb37f}"
"#preview{width:256px;max-width:100%;image-rendering:pixelated;min-height:64px;background:#111}#msg{color:#f88;min-height:1.2em}"
"#hist{display:flex;flex-wrap:wrap;gap:10px}.item{width:200px;font-size:12px}.item img{width:200px;image-rendering:pixelated}"
"canvas{background:#111;border:1px solid #3a3f46;width:100%}#refs img{height:48px;margin:2px}"
"</style></head><body><header>hidream.c &mdash; <span id=model>loading&hellip;</span></header><main>"
"<section id=form><label>Prompt</label><textarea id=prompt rows=4>a red circle on a blue background</textarea>"
"<label>Negative prompt</label><input type=text id=neg>"
"<div class=row><div><label>Mode</label><select id=mode><option>full<option>dev</select></div>"
"<div><label>Format</label><select id=fmt><option>png<option>jpeg<option>webp</select></div></div>"
"<div class=row><div><label>Width</label><input id=w type=number step=8 placeholder=model></div>"
"<div><label>Height</label><input id=h type=number step=8 placeholder=model></div></div>"
"<div class=row><div><label>Seed</label><input id=seed type=number placeholder=random></div>"
"<div><label>Steps</label><input id=steps type=number placeholder=model></div>"
"<div><label>CFG</label><input id=cfg type=number step=0.1 placeholder=model></div></div>"
"<label>Reference pictures (editing / personalization)</label><input id=files type=file accept=image/* multiple>"
"<div id=refs></div><label>Layout boxes (drag on the canvas, one per reference)</label>"
"<canvas id=canvas width=320 height=320></canvas><div class=row><input type=text id=layout placeholder='[[x1,x2,y1,y2],...]'>"
"<button id=clear type=button style='flex:none'>clear</button></div>"
"<label>API key (if the server asks for one)</label><input type=text id=key>"
"<p class=row><button class=go id=go>Generate</button><button id=cancel disabled>Cancel</button></p></section>"
"<section id=out><div id=status>idle</div><div id=bar><div id=fill></div></div><div id=msg></div>"
"<img id=preview alt=''><h3>History</h3><div id=hist></div></section></main><script>"
"const $=id=>document.getElementById(id);let job=null,refs=[],boxes=[],drag=null;"
"$('key').value=localStorage.getItem('hidream-key')||'';"
"function hdr(j){const h={};const k=$('key').value.trim();localStorage.setItem('hidream-key',k);"
"if(k)h.Authorization='Bearer '+k;if(j)h['Content-Type']='application/json';return h}"
"fetch('/health').then(r=>r.json()).then(j=>{$('model').textContent=j.model||j.status}).catch(()=>{});"
"function draw(){const c=$('canvas'),x=c.getContext('2d');x.clearRect(0,0,c.width,c.height);"
"x.strokeStyle='#3fb37f';x.fillStyle='#3fb37f';x.font='14px sans-serif';"
"boxes.forEach((b,i)=>{const im=$('refs').children[i];"
"if(im&&im.complete)x.drawImage(im,b[0]*c.width,b[2]*c.height,(b[1]-b[0])*c.width,(b[3]-b[2])*c.height);x.strokeRect(b[0]*c.width,b[2]*c.height,(b[1]-b[0])*c.width,(b[3]-b[2])*c.height);"
"x.fillText(String(i+1),b[0]*c.width+4,b[2]*c.height+16)});"
"$('layout').value=boxes.length?JSON.stringify(boxes.map(b=>b.map(v=>Math.round(v*1000)/1000))):''}"
"function pos(e){const r=$('canvas').getBoundingClientRect();return[Math.min(1,Math.max(0,(e.clientX-r.left)/r.width)),"
"Math.min(1,Math.max(0,(e.clientY-r.top)/r.height))]}"
"$('canvas').onmousedown=e=>{drag=pos(e)};$('canvas').onmouseup=e=>{if(!drag)return;const p=pos(e);"
"const b=[Math.min(drag[0],p[0]),Math.max(drag[0],p[0]),Math.min(drag[1],p[1]),Math.max(drag[1],p[1])];"
"drag=null;if(b[1]-b[0]>0.01&&b[3]-b[2]>0.01){boxes.push(b);draw()}};"
"$('clear').onclick=()=>{boxes=[];draw()};"
"$('files').onchange=async e=>{refs=[];$('refs').innerHTML='';for(const f of e.target.files){"
"const u=await new Promise(ok=>{const r=new FileReader();r.onload=()=>ok(r.result);r.readAsDataURL(f)});"
"refs.push(u);const i=new Image();i.onload=draw;i.src=u;$('refs').appendChild(i)}};"
"function num(id){const v=$(id).value.trim();return v===''?undefined:Number(v)}"
"function body(){const b={prompt:$('prompt').value,mode:$('mode').value,output_format:$('fmt').value,preview_every:1};"
"const neg=$('neg').value.trim();if(neg)b.negative_prompt=neg;"
"for(const [k,id] of [['width','w'],['height','h'],['seed','seed'],['steps','steps'],['cfg','cfg']]){const v=num(id);if(v!==undefined)b[k]=v}"
"if(refs.length)b.refs=refs;const l=$('layout').value.trim();if(l)b.layout=l;return b}"
"function setStatus(t,f){$('status').textContent=t;if(f!==undefined)$('fill').style.width=(f*100).toFixed(1)+'%'}"
"async function events(id,onev){const r=await fetch('/api/jobs/'+id+'/events',{headers:hdr()});"
"const rd=r.body.getReader(),dec=new TextDecoder();let buf='';for(;;){const {value,done}=await rd.read();if(done)return;"
"buf+=dec.decode(value,{stream:true});let i;while((i=buf.indexOf('\\n\\n'))>=0){const blk=buf.slice(0,i);buf=buf.slice(i+2);"
"let ev='message',data='';for(const ln of blk.split('\\n')){if(ln.startsWith('event: '))ev=ln.slice(7);"
"else if(ln.startsWith('data: '))data+=ln.slice(6)}if(data)onev(ev,JSON.parse(data))}}}"
"async function addHistory(j){const h=document.createElement('div');h.className='item';"
"const r=await fetch('/api/jobs/'+j.id+'/image',{headers:hdr()});const url=URL.createObjectURL(await r.blob());"
"const img=new Image();img.src=url;const a=document.createElement('a');a.href=url;a.download='hidream-'+j.seeds[0]+'.'+$('fmt').value;"
"a.textContent='download';const rg=document.createElement('button');rg.textContent='regenerate';"
"rg.onclick=()=>{$('prompt').value=j.prompt;$('seed').value=j.seeds[0];$('steps').value=j.steps;$('cfg').value=j.cfg;"
"$('mode').value=j.mode;$('w').value=j.width;$('h').value=j.height};"
"const pre=document.createElement('pre');pre.style.whiteSpace='pre-wrap';pre.textContent="
"'seed '+j.seeds[0]+', '+j.steps+' steps, cfg '+j.cfg+', '+j.width+'x'+j.height+', '+j.mode+'\\n'+j.prompt"
"+(j.refs?', '+j.refs+' reference(s)':'')+(j.warnings.length?'\\nwarning: '+j.warnings.join('; '):'');"
"h.append(img,pre,a,' ',rg);$('hist').prepend(h)}"
"$('go').onclick=async()=>{$('msg').textContent='';const r=await fetch('/api/jobs',{method:'POST',headers:hdr(1),body:JSON.stringify(body())});"
"const j=await r.json();if(!r.ok){$('msg').textContent=j.error.message;return}job=j.id;$('cancel').disabled=false;setStatus('queued',0);"
"await events(j.id,(ev,d)=>{if(ev==='progress')setStatus(d.status+' '+d.step+'/'+d.total,d.progress);"
"else if(ev==='preview')$('preview').src='data:image/jpeg;base64,'+d.jpeg;"
"else if(ev==='done'){setStatus('done',1);addHistory(d)}else if(ev==='error'){setStatus(d.status);$('msg').textContent=d.error}});"
"$('cancel').disabled=true;job=null};"
"$('cancel').onclick=()=>{if(job)fetch('/api/jobs/'+job+'/cancel',{method:'POST',headers:hdr()})};draw();"
"</script></body></html>\n";

enum MHD_Result srv_page(const srv_req *r) {
    if (strcmp(r->method, "GET")) return srv_error(r, 405, "use GET");
    char *copy = malloc(sizeof PAGE);
    if (!copy) return MHD_NO;
    memcpy(copy, PAGE, sizeof PAGE);
    return srv_bytes(r, 200, "text/html; charset=utf-8", copy, sizeof PAGE - 1);
}
