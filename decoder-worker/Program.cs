using Kosmos2.DecoderWorker;
using Kosmos2.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults("kosmos2-decoder-worker");
// Before the model loads: a worker that must not start refuses at once.
builder.AddInternalCallAuth("decoder worker");
builder.AddDecoderWorker();

var app = builder.Build();
app.MapServiceDefaults();
app.MapGrpcService<DecoderWorkerService>();
app.Run();
